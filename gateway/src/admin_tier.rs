//! `strata admin tier add|ls|info|check|edit|rm|drain`: the admin calls behind them and how
//! the command prints their answers. Secrets travel to the node in the signed call and are
//! only ever shown masked.

use crate::admin::query;
use crate::admin_lifecycle::{need, params};
use clap::Subcommand;
use s3s::{s3_error, S3Error, S3Result};
use serde_json::{json, Value};
use tiering::{Kind, TierConfig, TierEdit, Tiering};

#[derive(Subcommand)]
pub enum TierAction {
    /// Register a tier: the storage class lifecycle rules transition to. Its credentials are
    /// checked (a probe written, read and deleted) unless --no-check.
    Add {
        /// The tier's name: the storage class clients see, e.g. COLD.
        name: String,
        #[arg(long, default_value = "s3")]
        kind: Kind,
        /// S3: endpoint URL; GCS: JSON API base URL; Azure: blob service URL
        /// (http://127.0.0.1:10000/devstoreaccount1 for Azurite).
        #[arg(long)]
        endpoint: Option<String>,
        /// The remote bucket (Azure: container).
        #[arg(long)]
        bucket: String,
        /// Prepended to every remote key.
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long)]
        region: Option<String>,
        /// S3 path-style addressing.
        #[arg(long)]
        path_style: bool,
        /// Remote storage class (S3, GCS) or access tier (Azure) to write with.
        #[arg(long)]
        storage_class: Option<String>,
        #[arg(long, env = "STRATA_TIER_ACCESS_KEY")]
        access_key: Option<String>,
        /// S3 secret key; `env:NAME` makes the node read it from its environment.
        #[arg(long, env = "STRATA_TIER_SECRET_KEY", hide_env_values = true)]
        secret_key: Option<String>,
        /// Azure storage account.
        #[arg(long)]
        account: Option<String>,
        /// Azure account key (or `env:NAME`).
        #[arg(long, env = "STRATA_TIER_KEY", hide_env_values = true)]
        key: Option<String>,
        /// Azure SAS token (or `env:NAME`).
        #[arg(long, env = "STRATA_TIER_SAS", hide_env_values = true)]
        sas: Option<String>,
        /// GCS service-account key file, as the node sees it (none: anonymous).
        #[arg(long)]
        credentials: Option<String>,
        /// Register without proving the credentials first.
        #[arg(long)]
        no_check: bool,
    },
    /// List the tiers (secrets masked) with their counters and remote-delete backlog.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// One tier: settings (secrets masked), counters, backlog, pending remote deletes.
    Info {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Prove the tier works: write, read and delete a probe.
    Check { name: String },
    /// Rotate a tier's credentials or change its remote storage class.
    Edit {
        name: String,
        #[arg(long)]
        access_key: Option<String>,
        #[arg(long, env = "STRATA_TIER_SECRET_KEY", hide_env_values = true)]
        secret_key: Option<String>,
        #[arg(long, env = "STRATA_TIER_KEY", hide_env_values = true)]
        key: Option<String>,
        #[arg(long, env = "STRATA_TIER_SAS", hide_env_values = true)]
        sas: Option<String>,
        #[arg(long)]
        credentials: Option<String>,
        #[arg(long)]
        storage_class: Option<String>,
    },
    /// Remove a tier; refused while versions live on it.
    Rm { name: String },
    /// Bring every version on the tier back to the hot tier (with progress), after which
    /// `rm` succeeds.
    Drain {
        name: String,
        /// Start the drain and return at once.
        #[arg(long)]
        no_wait: bool,
    },
}

fn internal(e: impl std::fmt::Display) -> S3Error {
    s3_error!(InternalError, "{e}")
}

fn invalid(e: impl std::fmt::Display) -> S3Error {
    s3_error!(InvalidArgument, "{e}")
}

/// One tier as the admin API shows it: masked settings, counters, backlog.
fn describe(t: &Tiering, config: &TierConfig) -> Value {
    let counters = t.counters().remove(&config.name).unwrap_or_default();
    let backlog = t
        .journal()
        .backlog()
        .unwrap_or_default()
        .into_iter()
        .find(|(tier, _)| *tier == config.name)
        .map(|(_, b)| b)
        .unwrap_or_default();
    json!({
        "config": config.masked(),
        "counters": counters,
        "remote_delete_backlog": backlog,
    })
}

/// Serves `tier/*` admin calls.
pub async fn route(
    t: &std::sync::Arc<Tiering>,
    method: &str,
    op: &str,
    query: Option<&str>,
    body: &[u8],
) -> S3Result<Value> {
    let p = params(query);
    match (method, op) {
        ("POST", "tier/add") => {
            let tier: TierConfig = serde_json::from_slice(body).map_err(invalid)?;
            let name = tier.name.clone();
            if p.get("check").map(String::as_str) != Some("false") {
                // Proved on a client of its own before anything is stored.
                let remote = tiering::registry::client(&tier).map_err(invalid)?;
                tier.validate().map_err(invalid)?;
                let probe = format!("strata-check/{}", uuid::Uuid::now_v7());
                tiering::remote::check(remote.as_ref(), &probe)
                    .await
                    .map_err(|e| invalid(format!("tier {name} does not work: {e}")))?;
            }
            let checked = p.get("check").map(String::as_str) != Some("false");
            t.registry().add(tier, false).await.map_err(invalid)?;
            if checked {
                t.reached(&name, true);
            }
            let config = t
                .registry()
                .get(&name)
                .map(|x| x.config)
                .ok_or_else(|| internal("tier vanished"))?;
            Ok(describe(t, &config))
        }
        ("GET", "tier/ls") => Ok(Value::Array(
            t.registry().list().iter().map(|c| describe(t, c)).collect(),
        )),
        ("GET", "tier/info") => {
            let name = need(&p, "name")?;
            let config = t
                .registry()
                .get(name)
                .ok_or_else(|| invalid(format!("no tier {name}")))?
                .config;
            let mut v = describe(t, &config);
            let pending: Vec<_> = t
                .journal()
                .all(1000)
                .map_err(internal)?
                .into_iter()
                .filter(|e| e.tier == name)
                .take(20)
                .collect();
            v["pending_remote_deletes"] = serde_json::to_value(pending).map_err(internal)?;
            Ok(v)
        }
        ("POST", "tier/check") => {
            let name = need(&p, "name")?;
            t.check(name)
                .await
                .map_err(|e| invalid(format!("tier {name} does not work: {e}")))?;
            Ok(json!({ "tier": name, "ok": true }))
        }
        ("POST", "tier/edit") => {
            let name = need(&p, "name")?;
            let edit: TierEdit = serde_json::from_slice(body).map_err(invalid)?;
            let changed = t.registry().edit(name, &edit).await.map_err(invalid)?;
            Ok(describe(t, &changed))
        }
        ("DELETE", "tier/rm") => {
            let name = need(&p, "name")?;
            t.remove(name).await.map_err(invalid)?;
            Ok(json!({ "removed": name }))
        }
        ("POST", "tier/drain") => {
            let name = need(&p, "name")?;
            t.drain(name).await.map_err(invalid)?;
            Ok(json!({ "draining": name }))
        }
        ("GET", "tier/drain") => {
            let name = need(&p, "name")?;
            let status = t
                .drain_status(name)
                .ok_or_else(|| invalid(format!("no drain of tier {name} has run")))?;
            serde_json::to_value(status).map_err(internal)
        }
        _ => Err(s3_error!(
            NotImplemented,
            "Unknown admin call {method} {op}"
        )),
    }
}

/// Runs a `strata admin tier` command with `call(method, op, body)`.
pub async fn run(
    action: TierAction,
    call: impl AsyncFn(http::Method, String, Vec<u8>) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    use http::Method;
    let value = |text: String| -> anyhow::Result<Value> { Ok(serde_json::from_str(&text)?) };
    match action {
        TierAction::Add {
            name,
            kind,
            endpoint,
            bucket,
            prefix,
            region,
            path_style,
            storage_class,
            access_key,
            secret_key,
            account,
            key,
            sas,
            credentials,
            no_check,
        } => {
            let tier = TierConfig {
                name: name.clone(),
                kind: Some(kind),
                endpoint,
                bucket,
                prefix,
                region,
                path_style,
                storage_class,
                access_key,
                secret_key,
                account,
                key,
                sas,
                credentials,
                draining: false,
            };
            let check = if no_check { "false" } else { "true" };
            let op = format!("tier/add?{}", query(&[("check", check)]));
            let v = value(call(Method::POST, op, serde_json::to_vec(&tier)?).await?)?;
            println!("tier {name} added");
            print_tier(&v);
        }
        TierAction::Ls { json } => {
            let v = value(call(Method::GET, "tier/ls".into(), vec![]).await?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if v.as_array().is_none_or(|a| a.is_empty()) {
                println!("no tiers");
            } else {
                for t in v.as_array().into_iter().flatten() {
                    print_tier(t);
                }
            }
        }
        TierAction::Info { name, json } => {
            let op = format!("tier/info?{}", query(&[("name", &name)]));
            let v = value(call(Method::GET, op, vec![]).await?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_tier(&v);
                for e in v["pending_remote_deletes"].as_array().into_iter().flatten() {
                    println!(
                        "  pending delete {} ({}/{}), {} attempts, last error: {}",
                        e["remote_key"].as_str().unwrap_or_default(),
                        e["bucket"].as_str().unwrap_or_default(),
                        e["key"].as_str().unwrap_or_default(),
                        e["attempts"],
                        e["last_error"].as_str().unwrap_or("none"),
                    );
                }
            }
        }
        TierAction::Check { name } => {
            let op = format!("tier/check?{}", query(&[("name", &name)]));
            call(Method::POST, op, vec![]).await?;
            println!("tier {name} works: a probe was written, read back and deleted");
        }
        TierAction::Edit {
            name,
            access_key,
            secret_key,
            key,
            sas,
            credentials,
            storage_class,
        } => {
            let edit = TierEdit {
                access_key,
                secret_key,
                key,
                sas,
                credentials,
                storage_class,
            };
            let op = format!("tier/edit?{}", query(&[("name", &name)]));
            let v = value(call(Method::POST, op, serde_json::to_vec(&edit)?).await?)?;
            println!("tier {name} changed");
            print_tier(&v);
        }
        TierAction::Rm { name } => {
            let op = format!("tier/rm?{}", query(&[("name", &name)]));
            call(Method::DELETE, op, vec![]).await?;
            println!("tier {name} removed");
        }
        TierAction::Drain { name, no_wait } => {
            let op = format!("tier/drain?{}", query(&[("name", &name)]));
            call(Method::POST, op.clone(), vec![]).await?;
            if no_wait {
                println!("draining tier {name}");
                return Ok(());
            }
            let status =
                follow_drain(async || value(call(Method::GET, op.clone(), vec![]).await?)).await?;
            println!(
                "tier {name}: {} of {} versions recalled, {} failed",
                status["recalled"], status["total"], status["failed"]
            );
            for e in status["errors"].as_array().into_iter().flatten() {
                println!("  {}", e.as_str().unwrap_or_default());
            }
            if status["failed"].as_u64().unwrap_or(0) > 0 {
                anyhow::bail!("some versions could not be recalled; run the drain again");
            }
        }
    }
    Ok(())
}

/// Polls a drain until it is done, with a progress bar in a terminal.
async fn follow_drain(poll: impl AsyncFn() -> anyhow::Result<Value>) -> anyhow::Result<Value> {
    crate::admin::follow_progress(
        poll,
        |s| {
            let moved = s["recalled"].as_u64().unwrap_or(0) + s["failed"].as_u64().unwrap_or(0);
            (moved, s["total"].as_u64().unwrap_or(0))
        },
        |s| s["done"].as_bool() == Some(true),
    )
    .await
}

fn print_tier(v: &Value) {
    let c = &v["config"];
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!(
        "{}: {} {} bucket {}{} class {}",
        s(&c["name"]),
        s(&c["kind"]),
        s(&c["endpoint"]),
        s(&c["bucket"]),
        c["prefix"]
            .as_str()
            .map(|p| format!(" prefix {p}"))
            .unwrap_or_default(),
        s(&c["storage_class"]),
    );
    for field in [
        "access_key",
        "secret_key",
        "account",
        "key",
        "sas",
        "credentials",
    ] {
        if let Some(value) = c[field].as_str() {
            println!("  {field}: {value}");
        }
    }
    let n = &v["counters"];
    println!(
        "  reachable: {}; transitioned {} ({} bytes), restored {}, recalled {}, remote deletes {}; failures: {} transitions, {} deletes, {} reads",
        match n["reachable"].as_bool() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "not called yet",
        },
        n["transitioned_objects"],
        n["transitioned_bytes"],
        n["restored_objects"],
        n["recalled_objects"],
        n["remote_deletes"],
        n["transition_failures"],
        n["remote_delete_failures"],
        n["read_failures"],
    );
    let b = &v["remote_delete_backlog"];
    println!(
        "  remote deletes waiting: {} ({} failing)",
        b["entries"], b["failing"]
    );
}
