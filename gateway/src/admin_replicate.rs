//! `strata admin replicate add-target|ls|edit|rm|status|failed|pause|resume|resync|diff`:
//! the admin calls behind them and how the command prints their answers. Secrets travel to
//! the node in the signed call and are only ever shown masked.

use crate::admin::{query, query_given};
use crate::admin_lifecycle::{need, params};
use clap::Subcommand;
use replicator::{Replicator, TargetConfig};
use s3s::{s3_error, S3Error, S3Result};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Subcommand)]
pub enum ReplicateAction {
    /// Register a replication target for a source bucket: checks that it answers and that its
    /// bucket is versioned, and prints the ARN a rule's Destination Bucket names.
    AddTarget {
        /// The source bucket (on this site).
        #[arg(long)]
        bucket: String,
        /// The target's S3 endpoint URL (another Strata site or any S3 endpoint).
        #[arg(long)]
        target: String,
        /// The bucket on the target (versioning enabled).
        #[arg(long)]
        target_bucket: String,
        #[arg(long, env = "STRATA_TARGET_ACCESS_KEY")]
        access_key: String,
        /// The secret key (or `env:NAME`: the node reads it from its environment).
        #[arg(long, env = "STRATA_TARGET_SECRET_KEY", hide_env_values = true)]
        secret_key: String,
        #[arg(long)]
        region: Option<String>,
        /// S3 path-style addressing.
        #[arg(long)]
        path_style: bool,
        /// At most this many bytes per second to the target.
        #[arg(long)]
        bandwidth: Option<u64>,
        /// Replicate deletes that name a version id too (as MinIO's DeleteReplication).
        #[arg(long)]
        version_deletes: bool,
        /// Register without calling the target first.
        #[arg(long)]
        no_check: bool,
    },
    /// List the targets (secrets masked).
    Ls {
        #[arg(long)]
        bucket: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Rotate a target's credentials or change its bandwidth limit or version deletes.
    Edit {
        arn: String,
        #[arg(long)]
        access_key: Option<String>,
        #[arg(long, env = "STRATA_TARGET_SECRET_KEY", hide_env_values = true)]
        secret_key: Option<String>,
        /// Bytes per second (0: no limit).
        #[arg(long)]
        bandwidth: Option<u64>,
        #[arg(long)]
        version_deletes: Option<bool>,
    },
    /// Remove a target (refused while a replication rule names it).
    Rm { arn: String },
    /// Per target: online, backlog (count, bytes, oldest), throughput, failures.
    Status {
        bucket: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Entries past their retry budget (FAILED), and retrying them.
    Failed {
        #[command(subcommand)]
        action: FailedAction,
    },
    /// Stop sending to a target (writes still queue).
    Pause { arn: String },
    /// Send to a paused target again.
    Resume { arn: String },
    /// Queue every version of BUCKET that a target lacks (existing objects), with progress;
    /// a stopped resync continues where it was.
    Resync {
        bucket: String,
        /// One target (default: every target the bucket's rules name).
        #[arg(long)]
        target: Option<String>,
    },
    /// List versions whose copy on a target is missing or differs (exit status 1 if any).
    Diff {
        bucket: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum FailedAction {
    Ls {
        #[arg(long)]
        target: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Retry failed entries now: one (--id) or all (--all, of --target if given).
    Retry {
        #[arg(long)]
        id: Option<i64>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        target: Option<String>,
    },
}

fn internal(e: impl std::fmt::Display) -> S3Error {
    s3_error!(InternalError, "{e}")
}

fn invalid(e: impl std::fmt::Display) -> S3Error {
    s3_error!(InvalidArgument, "{e}")
}

/// Settings `edit` may change.
#[derive(Default, Deserialize, serde::Serialize)]
struct TargetEdit {
    access_key: Option<String>,
    secret_key: Option<String>,
    bandwidth: Option<u64>,
    version_deletes: Option<bool>,
}

fn status_of(r: &Replicator, bucket: Option<&str>) -> S3Result<Value> {
    let now = storage::meta::now_ns();
    let backlog = r.queue().backlog().map_err(internal)?;
    let counters = r.counters();
    let targets: Vec<Value> = r
        .targets()
        .list()
        .into_iter()
        .filter(|t| bucket.is_none_or(|b| b == t.bucket))
        .map(|t| {
            let b = backlog
                .iter()
                .find(|(arn, _)| *arn == t.arn)
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            let c = counters.get(&t.arn).cloned().unwrap_or_default();
            json!({
                "arn": t.arn,
                "bucket": t.bucket,
                "target": format!("{}/{}", t.endpoint.trim_end_matches('/'), t.target_bucket),
                "paused": t.paused,
                "online": c.online,
                "backlog": b.count,
                "backlog_bytes": b.bytes,
                "failed": b.failed,
                "oldest_pending_seconds": b.oldest_ns.map(|o| (now - o).max(0) as f64 / 1e9),
                "replicated_objects": c.replicated_objects,
                "replicated_bytes": c.replicated_bytes,
                "throughput_bytes_per_second": c.throughput(),
                "failures": c.failures,
                "last_error": c.last_error,
            })
        })
        .collect();
    Ok(Value::Array(targets))
}

pub async fn route(
    r: &Arc<Replicator>,
    method: &str,
    op: &str,
    query: Option<&str>,
    body: &[u8],
) -> S3Result<Value> {
    let p = params(query);
    match (method, op) {
        ("POST", "replicate/add-target") => {
            let mut target: TargetConfig = serde_json::from_slice(body).map_err(invalid)?;
            r.store()
                .bucket(&target.bucket)
                .await
                .map_err(|e| invalid(format!("bucket {}: {e}", target.bucket)))?;
            target.arn = TargetConfig::new_arn(&target.target_bucket);
            target.validate().map_err(invalid)?;
            if p.get("check").map(String::as_str) != Some("false") {
                let client = replicator::client::TargetClient::new(&target).map_err(invalid)?;
                client
                    .check()
                    .await
                    .map_err(|e| invalid(format!("the target does not work: {e}")))?;
            }
            r.targets().add(target.clone()).await.map_err(invalid)?;
            Ok(serde_json::to_value(target.masked()).map_err(internal)?)
        }
        ("GET", "replicate/targets") => Ok(Value::Array(
            r.targets()
                .list()
                .into_iter()
                .filter(|t| p.get("bucket").is_none_or(|b| *b == t.bucket))
                .map(|t| serde_json::to_value(t.masked()).expect("serializes"))
                .collect(),
        )),
        ("POST", "replicate/edit") => {
            let arn = need(&p, "arn")?;
            let edit: TargetEdit = serde_json::from_slice(body).map_err(invalid)?;
            let changed = r
                .targets()
                .edit(arn, |t| {
                    if let Some(k) = edit.access_key {
                        t.access_key = k;
                    }
                    if let Some(s) = edit.secret_key {
                        t.secret_key = s;
                    }
                    if let Some(b) = edit.bandwidth {
                        t.bandwidth = (b > 0).then_some(b);
                    }
                    if let Some(v) = edit.version_deletes {
                        t.version_deletes = v;
                    }
                })
                .await
                .map_err(invalid)?;
            // New credentials may fix what failed: try again now.
            r.retry(None, Some(arn)).await.map_err(internal)?;
            Ok(serde_json::to_value(changed.masked()).map_err(internal)?)
        }
        ("DELETE", "replicate/target") => {
            let arn = need(&p, "arn")?;
            r.remove_target(arn).await.map_err(invalid)?;
            Ok(json!({ "removed": arn }))
        }
        ("GET", "replicate/status") => status_of(r, p.get("bucket").map(String::as_str)),
        ("GET", "replicate/failed") => {
            let failed = r
                .queue()
                .failed(p.get("target").map(String::as_str), 1000)
                .map_err(internal)?;
            serde_json::to_value(failed).map_err(internal)
        }
        ("POST", "replicate/retry") => {
            let id = match p.get("id") {
                Some(id) => Some(id.parse::<i64>().map_err(invalid)?),
                None => None,
            };
            let n = r
                .retry(id, p.get("target").map(String::as_str))
                .await
                .map_err(internal)?;
            Ok(json!({ "retried": n }))
        }
        ("POST", "replicate/pause") | ("POST", "replicate/resume") => {
            let arn = need(&p, "arn")?;
            let paused = op == "replicate/pause";
            r.set_paused(arn, paused).await.map_err(invalid)?;
            Ok(json!({ "arn": arn, "paused": paused }))
        }
        ("POST", "replicate/resync") => {
            let bucket = need(&p, "bucket")?;
            let target = need(&p, "target")?;
            r.resync(bucket, target).await.map_err(invalid)?;
            Ok(json!({ "bucket": bucket, "target": target, "started": true }))
        }
        ("GET", "replicate/resync") => {
            let status = r
                .resync_status(need(&p, "bucket")?, need(&p, "target")?)
                .await
                .map_err(invalid)?;
            serde_json::to_value(status).map_err(internal)
        }
        ("GET", "replicate/diff") => {
            let diff = r.diff(need(&p, "bucket")?, 1000).await.map_err(invalid)?;
            serde_json::to_value(diff).map_err(internal)
        }
        ("GET", "replicate/rules") => {
            // The targets a bucket's rules name (for `resync` without --target).
            let bucket = need(&p, "bucket")?;
            let config = r.config(bucket).ok_or_else(|| {
                invalid(format!("bucket {bucket} has no replication configuration"))
            })?;
            Ok(json!(config.destinations()))
        }
        _ => Err(s3_error!(
            NotImplemented,
            "Unknown admin call {method} {op}"
        )),
    }
}

/// Runs a `strata admin replicate` command with `call(method, op, body)`.
pub async fn run(
    action: ReplicateAction,
    call: impl AsyncFn(http::Method, String, Vec<u8>) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    use http::Method;
    let value = |text: String| -> anyhow::Result<Value> { Ok(serde_json::from_str(&text)?) };
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    match action {
        ReplicateAction::AddTarget {
            bucket,
            target,
            target_bucket,
            access_key,
            secret_key,
            region,
            path_style,
            bandwidth,
            version_deletes,
            no_check,
        } => {
            let config = TargetConfig {
                arn: String::new(),
                bucket,
                endpoint: target,
                target_bucket,
                access_key,
                secret_key,
                region,
                path_style,
                bandwidth,
                paused: false,
                version_deletes,
            };
            let op = format!(
                "replicate/add-target?{}",
                query(&[("check", if no_check { "false" } else { "true" })])
            );
            let v = value(call(Method::POST, op, serde_json::to_vec(&config)?).await?)?;
            println!("{}", v["arn"].as_str().unwrap_or_default());
        }
        ReplicateAction::Ls { bucket, json } => {
            let q = query_given(&[("bucket", bucket.as_deref())]);
            let v = value(call(Method::GET, format!("replicate/targets?{q}"), vec![]).await?)?;
            if json {
                println!("{}", pretty(&v));
            } else {
                for t in v.as_array().into_iter().flatten() {
                    println!(
                        "{}  {} -> {}/{}{}{}",
                        t["arn"].as_str().unwrap_or_default(),
                        t["bucket"].as_str().unwrap_or_default(),
                        t["endpoint"]
                            .as_str()
                            .unwrap_or_default()
                            .trim_end_matches('/'),
                        t["target_bucket"].as_str().unwrap_or_default(),
                        if t["paused"].as_bool() == Some(true) {
                            "  (paused)"
                        } else {
                            ""
                        },
                        if t["version_deletes"].as_bool() == Some(true) {
                            "  (version deletes)"
                        } else {
                            ""
                        },
                    );
                }
            }
        }
        ReplicateAction::Edit {
            arn,
            access_key,
            secret_key,
            bandwidth,
            version_deletes,
        } => {
            let edit = TargetEdit {
                access_key,
                secret_key,
                bandwidth,
                version_deletes,
            };
            let op = format!("replicate/edit?{}", query(&[("arn", &arn)]));
            let v = value(call(Method::POST, op, serde_json::to_vec(&edit)?).await?)?;
            println!("{}", pretty(&v));
        }
        ReplicateAction::Rm { arn } => {
            let op = format!("replicate/target?{}", query(&[("arn", &arn)]));
            call(Method::DELETE, op, vec![]).await?;
            println!("removed {arn}");
        }
        ReplicateAction::Status { bucket, json } => {
            let q = query_given(&[("bucket", bucket.as_deref())]);
            let v = value(call(Method::GET, format!("replicate/status?{q}"), vec![]).await?)?;
            if json {
                println!("{}", pretty(&v));
            } else {
                print_status(&v);
            }
        }
        ReplicateAction::Failed { action } => match action {
            FailedAction::Ls { target, json } => {
                let q = query_given(&[("target", target.as_deref())]);
                let v = value(call(Method::GET, format!("replicate/failed?{q}"), vec![]).await?)?;
                if json {
                    println!("{}", pretty(&v));
                } else {
                    for e in v.as_array().into_iter().flatten() {
                        println!(
                            "{}  {}/{} {} {} -> {}: {} attempt(s), last: {}",
                            e["id"],
                            e["bucket"].as_str().unwrap_or_default(),
                            e["key"].as_str().unwrap_or_default(),
                            e["version_id"].as_str().unwrap_or_default(),
                            e["op"].as_str().unwrap_or_default(),
                            e["target"].as_str().unwrap_or_default(),
                            e["attempts"],
                            e["last_error"].as_str().unwrap_or_default(),
                        );
                    }
                }
            }
            FailedAction::Retry { id, all, target } => {
                if id.is_none() && !all {
                    anyhow::bail!(
                        "name an entry with --id, or retry every failed entry with --all"
                    );
                }
                let id = id.map(|i| i.to_string());
                let q = query_given(&[("id", id.as_deref()), ("target", target.as_deref())]);
                let v = value(call(Method::POST, format!("replicate/retry?{q}"), vec![]).await?)?;
                println!("{} entr(ies) due now", v["retried"]);
            }
        },
        ReplicateAction::Pause { arn } => {
            call(
                Method::POST,
                format!("replicate/pause?{}", query(&[("arn", &arn)])),
                vec![],
            )
            .await?;
            println!("paused {arn}");
        }
        ReplicateAction::Resume { arn } => {
            call(
                Method::POST,
                format!("replicate/resume?{}", query(&[("arn", &arn)])),
                vec![],
            )
            .await?;
            println!("resumed {arn}");
        }
        ReplicateAction::Resync { bucket, target } => {
            let targets: Vec<String> = match target {
                Some(t) => vec![t],
                None => {
                    let v = value(
                        call(
                            Method::GET,
                            format!("replicate/rules?{}", query(&[("bucket", &bucket)])),
                            vec![],
                        )
                        .await?,
                    )?;
                    serde_json::from_value(v)?
                }
            };
            for t in targets {
                let q = query(&[("bucket", &bucket), ("target", &t)]);
                call(Method::POST, format!("replicate/resync?{q}"), vec![]).await?;
                let status = follow_resync(async || {
                    value(call(Method::GET, format!("replicate/resync?{q}"), vec![]).await?)
                })
                .await?;
                println!(
                    "{t}: {} version(s) checked, {} queued",
                    status["done"], status["queued"]
                );
            }
        }
        ReplicateAction::Diff { bucket, json } => {
            let q = query(&[("bucket", &bucket)]);
            let v = value(call(Method::GET, format!("replicate/diff?{q}"), vec![]).await?)?;
            if json {
                println!("{}", pretty(&v));
            } else {
                for d in v["versions"].as_array().into_iter().flatten() {
                    println!(
                        "{} {} -> {}: {} (status {})",
                        d["key"].as_str().unwrap_or_default(),
                        d["version_id"].as_str().unwrap_or_default(),
                        d["target"].as_str().unwrap_or_default(),
                        d["problem"].as_str().unwrap_or_default(),
                        d["status"].as_str().unwrap_or_default(),
                    );
                }
                println!(
                    "{} version(s) compared, {} missing or different",
                    v["compared"], v["differing"]
                );
            }
            if v["differing"].as_u64().unwrap_or(0) > 0 {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

fn print_status(v: &Value) {
    for t in v.as_array().into_iter().flatten() {
        let online = match t["online"].as_bool() {
            Some(true) => "online",
            Some(false) => "OFFLINE",
            None => "not called yet",
        };
        println!(
            "{}  {} -> {}  {}{}",
            t["arn"].as_str().unwrap_or_default(),
            t["bucket"].as_str().unwrap_or_default(),
            t["target"].as_str().unwrap_or_default(),
            online,
            if t["paused"].as_bool() == Some(true) {
                " (paused)"
            } else {
                ""
            },
        );
        println!(
            "  backlog {} version(s), {} bytes, {} failed, oldest {}",
            t["backlog"],
            t["backlog_bytes"],
            t["failed"],
            t["oldest_pending_seconds"]
                .as_f64()
                .map_or("-".to_owned(), |s| format!("{s:.1} s ago")),
        );
        println!(
            "  replicated {} version(s), {} bytes; {} B/s over the last minute; {} failure(s){}",
            t["replicated_objects"],
            t["replicated_bytes"],
            t["throughput_bytes_per_second"],
            t["failures"],
            t["last_error"]
                .as_str()
                .map(|e| format!(", last: {e}"))
                .unwrap_or_default(),
        );
    }
}

/// Polls a resync until it ends, with a progress bar in a terminal.
async fn follow_resync(poll: impl AsyncFn() -> anyhow::Result<Value>) -> anyhow::Result<Value> {
    let status = crate::admin::follow_progress(
        poll,
        |s| {
            let done = s["done"].as_u64().unwrap_or(0);
            (done, s["total"].as_u64().unwrap_or(0).max(done))
        },
        |s| s["running"].as_bool() == Some(false),
    )
    .await?;
    if status["finished"].as_bool() != Some(true) {
        anyhow::bail!(
            "the resync stopped after {} version(s) (the node's log says why); run it again to continue",
            status["done"]
        );
    }
    Ok(status)
}
