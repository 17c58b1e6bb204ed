//! `strata`: one binary for every node — the S3 server and the admin commands.

/// mimalloc keeps freed blocks for reuse; glibc returns every large (≥ 128 KiB) shard buffer to
/// the kernel and pays page faults to get it back (measured: 2× slower EC 2+2 encoding).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod admin_lifecycle;
mod admin_replicate;
mod admin_tier;
mod auth;
mod body_check;
mod cluster;
mod config;
mod http_fixups;
mod idle_body;
mod metrics;
mod peer_metrics;
mod post_form;
mod query;
mod replication_metrics;
mod s3;
mod server;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Strata: S3-compatible, erasure-coded object storage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node. With no options: one node, 4 drives under ./data, on 127.0.0.1:9000.
    Server {
        /// HOST:PORT to listen on.
        #[arg(long)]
        address: Option<String>,
        /// Directory whose subdirectories drive1..driveN are the drives.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Number of drive directories to create under --data.
        #[arg(long)]
        drives: Option<usize>,
        /// TOML configuration file (address, root_user, root_password, drives, parity, domains,
        /// idle_timeout, min_free, lifecycle_schedule, lifecycle_rate, lifecycle_scan_pause,
        /// lifecycle_day_seconds, [cluster] endpoints).
        #[arg(long)]
        config: Option<PathBuf>,
        /// A multi-node topology, the same on every node, as MinIO's: `http://HOST:PORT/PATH`
        /// with `{a...b}` ellipses (`http://10.0.0.{1...4}:9000/mnt/disk{1...2}`); this node
        /// is the one --address names. Needs STRATA_CLUSTER_SECRET.
        endpoints: Vec<String>,
    },
    /// Administer a running node (signed with STRATA_ROOT_USER / STRATA_ROOT_PASSWORD).
    Admin {
        /// The node's S3 endpoint (given before the command: `tier add` has an --endpoint of
        /// its own, the tier's).
        #[arg(long, default_value = "http://127.0.0.1:9000", env = "STRATA_ENDPOINT")]
        endpoint: String,
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Subcommand)]
enum AdminAction {
    /// Rebuild missing or corrupt shards everywhere (a progress bar in a terminal) and report
    /// what was fixed.
    Heal,
    /// Show the deployment, its erasure sets and drive states.
    Info,
    /// Lifecycle: what the scanner did, why a version has (not) expired, what rules would do.
    Lifecycle {
        #[command(subcommand)]
        action: LifecycleAction,
    },
    /// Remote tiers: the storage classes lifecycle transitions move versions to.
    Tier {
        #[command(subcommand)]
        action: Box<admin_tier::TierAction>,
    },
    /// Bucket replication: targets, backlog, failed entries, resync, diff.
    Replicate {
        #[command(subcommand)]
        action: Box<admin_replicate::ReplicateAction>,
    },
}

#[derive(Subcommand)]
enum LifecycleAction {
    /// Each bucket's last scan, the scan in progress (with a progress bar in a terminal) and
    /// the actions that failed.
    Status {
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Why each rule does or does not act on a version, when, and in what state.
    Explain {
        bucket: String,
        key: String,
        /// A version id (`null` for the null version); without it, the current version.
        #[arg(long)]
        version_id: Option<String>,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What a configuration (not applied yet, or the bucket's own without --file) would do,
    /// day by day: versions and bytes per rule, with sample keys.
    Preview {
        bucket: String,
        /// The configuration: XML, or the JSON `aws s3api put-bucket-lifecycle-configuration`
        /// takes.
        #[arg(long)]
        file: Option<PathBuf>,
        /// How many days ahead (1 to 3650).
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    if let Err(e) = run() {
        eprintln!("strata: {e:#}");
        std::process::exit(1);
    }
}

/// Threads for file I/O. Each keeps allocator caches of its own, so an unbounded pool (512 by
/// default) costs memory under many concurrent uploads, while the drives cannot go faster.
const BLOCKING_THREADS: usize = 64;

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
                .unwrap_or_else(|_| "info,s3s=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()?;
    match cli.command {
        Command::Server {
            address,
            data,
            drives,
            config,
            endpoints,
        } => {
            let overrides = config::Overrides {
                address,
                data,
                drives,
                config,
                endpoints,
            };
            let config = config::Config::resolve(&overrides, |k| std::env::var(k).ok())?;
            let served = runtime.block_on(server::serve(config));
            // File I/O still running on the blocking pool (a hung drive) does not hold the exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
            served
        }
        Command::Admin { endpoint, action } => {
            let user =
                std::env::var("STRATA_ROOT_USER").unwrap_or_else(|_| config::DEFAULT_USER.into());
            let password = std::env::var("STRATA_ROOT_PASSWORD")
                .unwrap_or_else(|_| config::DEFAULT_PASSWORD.into());
            let call = |method: http::Method, op: String, body: Vec<u8>| {
                let (endpoint, user, password) = (&endpoint, &user, &password);
                async move { admin::call(endpoint, method, &op, body.into(), user, password).await }
            };
            let get = |op: String| call(http::Method::GET, op, Vec::new());
            let value = |text: String| -> anyhow::Result<serde_json::Value> {
                Ok(serde_json::from_str(&text)?)
            };
            runtime.block_on(async {
                match action {
                    AdminAction::Heal => {
                        let heal = call(http::Method::POST, "heal".into(), vec![]);
                        let progress =
                            admin::heal_progress(async || value(get("heal/status".into()).await?));
                        println!("{}", admin::while_running(heal, progress).await?)
                    }
                    AdminAction::Info => println!("{}", get("info".into()).await?),
                    AdminAction::Tier { action } => admin_tier::run(*action, call).await?,
                    AdminAction::Replicate { action } => {
                        admin_replicate::run(*action, call).await?
                    }
                    AdminAction::Lifecycle { action } => match action {
                        LifecycleAction::Status { json } => {
                            let v = value(get("lifecycle/status".into()).await?)?;
                            if json {
                                println!("{}", serde_json::to_string_pretty(&v)?);
                            } else {
                                admin_lifecycle::print_status(&v);
                                admin_lifecycle::follow(async || {
                                    value(get("lifecycle/status".into()).await?)
                                })
                                .await?;
                            }
                        }
                        LifecycleAction::Explain {
                            bucket,
                            key,
                            version_id,
                            json,
                        } => {
                            let q = admin::query_given(&[
                                ("bucket", Some(&bucket)),
                                ("key", Some(&key)),
                                ("versionId", version_id.as_deref()),
                            ]);
                            let v = value(get(format!("lifecycle/explain?{q}")).await?)?;
                            if json {
                                println!("{}", serde_json::to_string_pretty(&v)?);
                            } else {
                                admin_lifecycle::print_explain(&v);
                            }
                        }
                        LifecycleAction::Preview {
                            bucket,
                            file,
                            days,
                            json,
                        } => {
                            let body = match &file {
                                Some(f) => std::fs::read(f)
                                    .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?,
                                None => Vec::new(),
                            };
                            // An empty body means "the bucket's own rules" to the server.
                            if let Some(f) = file
                                .as_ref()
                                .filter(|_| body.iter().all(u8::is_ascii_whitespace))
                            {
                                anyhow::bail!("{} is empty", f.display());
                            }
                            let days = days.to_string();
                            let op = format!(
                                "lifecycle/preview?{}",
                                admin::query(&[("bucket", &bucket), ("days", &days)])
                            );
                            let v = value(call(http::Method::POST, op, body).await?)?;
                            if json {
                                println!("{}", serde_json::to_string_pretty(&v)?);
                            } else {
                                admin_lifecycle::print_preview(&v);
                            }
                        }
                    },
                }
                Ok(())
            })
        }
    }
}
