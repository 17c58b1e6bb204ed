//! `strata`: one binary for every node — the S3 server and the admin commands.

/// mimalloc keeps freed blocks for reuse; glibc returns every large (≥ 128 KiB) shard buffer to
/// the kernel and pays page faults to get it back (measured: 2× slower EC 2+2 encoding).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod auth;
mod body_check;
mod config;
mod http_fixups;
mod idle_body;
mod metrics;
mod query;
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
        /// TOML configuration file (address, root_user, root_password, drives, parity, domains).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Administer a running node (signed with STRATA_ROOT_USER / STRATA_ROOT_PASSWORD).
    Admin {
        /// The node's S3 endpoint.
        #[arg(long, default_value = "http://127.0.0.1:9000", global = true)]
        endpoint: String,
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Subcommand)]
enum AdminAction {
    /// Rebuild missing or corrupt shards everywhere and report what was fixed.
    Heal,
    /// Show the deployment, its erasure sets and drive states.
    Info,
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
        } => {
            let overrides = config::Overrides {
                address,
                data,
                drives,
                config,
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
            let (method, op) = match action {
                AdminAction::Heal => (http::Method::POST, "heal"),
                AdminAction::Info => (http::Method::GET, "info"),
            };
            let out = runtime.block_on(admin::call(&endpoint, method, op, &user, &password))?;
            println!("{out}");
            Ok(())
        }
    }
}
