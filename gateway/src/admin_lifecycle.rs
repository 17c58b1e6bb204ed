//! `strata admin lifecycle status|explain|preview`: the admin calls behind them and how the
//! command prints their answers (JSON with `--json`, text otherwise).

use crate::s3::lifecycle_configuration;
use lifecycle::report;
use lifecycle::scanner::{self, Scanner};
use s3s::{s3_error, S3Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) fn params(query: Option<&str>) -> BTreeMap<String, String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(crate) fn need<'a>(p: &'a BTreeMap<String, String>, name: &str) -> S3Result<&'a str> {
    p.get(name)
        .map(String::as_str)
        .ok_or_else(|| s3_error!(InvalidArgument, "the call needs the parameter '{name}'"))
}

/// `GET lifecycle/status`.
pub fn status(scanner: &Scanner) -> S3Result<Value> {
    let s = scanner
        .status()
        .map_err(|e| s3_error!(InternalError, "{e}"))?;
    serde_json::to_value(s).map_err(|e| s3_error!(InternalError, "{e}"))
}

/// `GET lifecycle/explain?bucket=B&key=K[&versionId=V]`.
pub async fn explain(scanner: &Scanner, query: Option<&str>) -> S3Result<Value> {
    let p = params(query);
    let e = report::explain(
        scanner,
        need(&p, "bucket")?,
        need(&p, "key")?,
        p.get("versionId").map(String::as_str),
    )
    .await
    .map_err(|e| s3_error!(InvalidArgument, "{e}"))?;
    serde_json::to_value(e).map_err(|e| s3_error!(InternalError, "{e}"))
}

/// `POST lifecycle/preview?bucket=B&days=N` with a configuration (XML, or the JSON the aws CLI
/// takes) in the body, or none for the bucket's own.
pub async fn preview(
    scanner: &Scanner,
    tiering: &tiering::Tiering,
    query: Option<&str>,
    body: &[u8],
) -> S3Result<Value> {
    let p = params(query);
    let bucket = need(&p, "bucket")?;
    let days: u32 = match p.get("days") {
        None => 30,
        Some(d) => d
            .parse()
            .ok()
            .filter(|d| (1..=3650).contains(d))
            .ok_or_else(|| s3_error!(InvalidArgument, "days must be 1 to 3650"))?,
    };
    let store = scanner.store();
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        let record = store
            .bucket(bucket)
            .await
            .map_err(crate::s3::error::s3_err)?;
        scanner::config_of(&record).ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "bucket {bucket} has no lifecycle configuration; pass one with --file"
            )
        })?
    } else {
        lifecycle_configuration(body, &|class| tiering.is_tier(class))?
    };
    let preview = report::preview(store, bucket, &config, scanner.clock(), days)
        .await
        .map_err(|e| s3_error!(InvalidArgument, "{e}"))?;
    serde_json::to_value(preview).map_err(|e| s3_error!(InternalError, "{e}"))
}

fn text(v: &Value, name: &str) -> String {
    match &v[name] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn when(ns: &Value) -> String {
    ns.as_i64().map_or_else(|| "-".into(), report::rfc3339)
}

/// The text form of a status answer.
pub fn print_status(v: &Value) {
    let scans = v["scans"].as_array().cloned().unwrap_or_default();
    if scans.is_empty() {
        println!("no bucket with lifecycle rules has been scanned yet");
    }
    for s in &scans {
        println!(
            "{}: last scan {} → {}, {} versions, {} uploads, {} actions done, {} failed, {} blocked by object lock",
            text(s, "bucket"),
            when(&s["started_ns"]),
            if s["finished_ns"].is_null() { "(running or cut off)".into() } else { when(&s["finished_ns"]) },
            text(s, "versions_scanned"),
            text(s, "uploads_scanned"),
            text(s, "actions_done"),
            text(s, "actions_failed"),
            text(s, "actions_blocked"),
        );
    }
    if let Some(p) = v["in_progress"].as_object() {
        println!(
            "scanning {}: erasure set {} of {}, at key '{}', {} versions so far",
            p["bucket"].as_str().unwrap_or_default(),
            p["set"].as_u64().unwrap_or_default() + 1,
            p["sets"],
            p["key"].as_str().unwrap_or_default(),
            p["versions_scanned"],
        );
    }
    for f in v["failures"].as_array().cloned().unwrap_or_default() {
        println!(
            "failed: {} {}/{} (version {}), due {}: {}",
            text(&f, "action"),
            text(&f, "bucket"),
            text(&f, "key"),
            text(&f, "version"),
            when(&f["due_ns"]),
            text(&f, "error"),
        );
    }
}

/// Follows a scan in progress with a progress bar (a terminal only), until it ends. The bar's
/// length is the versions the bucket's previous scan saw.
pub async fn follow(poll: impl AsyncFn() -> anyhow::Result<Value>) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let mut status = poll().await?;
    if !std::io::stdout().is_terminal() || status["in_progress"].is_null() {
        return Ok(());
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} versions")
            .expect("static template")
            .progress_chars("=> "),
    );
    while let Some(p) = status["in_progress"].as_object() {
        let bucket = p["bucket"].as_str().unwrap_or_default().to_owned();
        let previous = status["scans"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["bucket"] == bucket.as_str()))
            .and_then(|s| s["versions_scanned"].as_u64())
            .unwrap_or(0);
        let done = p["versions_scanned"].as_u64().unwrap_or(0);
        bar.set_length(previous.max(done));
        bar.set_position(done);
        bar.set_message(format!(
            "{bucket} (set {}/{})",
            p["set"].as_u64().unwrap_or(0) + 1,
            p["sets"]
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
        status = poll().await?;
    }
    bar.finish_with_message("scan finished");
    Ok(())
}

/// The text form of an explain answer.
pub fn print_explain(v: &Value) {
    println!(
        "{}/{} version {}{}{}: {} bytes, last modified {}",
        text(v, "bucket"),
        text(v, "key"),
        text(v, "version_id"),
        if v["is_latest"] == true {
            " (current)"
        } else {
            " (noncurrent)"
        },
        if v["is_delete_marker"] == true {
            " delete marker"
        } else {
            ""
        },
        text(v, "size"),
        text(v, "last_modified"),
    );
    if let Some(storage) = v["storage"].as_str() {
        println!("  data: {storage}");
    }
    if let Some(at) = v["expired_by_lifecycle_at"].as_str() {
        println!("  expired by lifecycle at {at}: a lifecycle delete marker hides it");
    }
    if v["no_configuration"] == true {
        println!("  the bucket has no lifecycle configuration");
    }
    for r in v["rules"].as_array().cloned().unwrap_or_default() {
        match r["reason"].as_str() {
            Some(reason) => println!("  rule {}: does not apply: {reason}", text(&r, "rule_id")),
            None => println!("  rule {}: applies", text(&r, "rule_id")),
        }
        let actions = r["actions"].as_array().cloned().unwrap_or_default();
        if let Some(note) = r["note"].as_str() {
            println!("    {note}");
        }
        for a in actions {
            println!(
                "    {}{}: due {} — {}",
                text(&a, "action"),
                a["storage_class"]
                    .as_str()
                    .map(|c| format!(" to {c}"))
                    .unwrap_or_default(),
                text(&a, "due"),
                text(&a, "state"),
            );
        }
    }
    println!("  (now: {})", text(v, "now"));
}

/// The text form of a preview answer.
pub fn print_preview(v: &Value) {
    println!(
        "{}: {} versions evaluated, next {} days from {}",
        text(v, "bucket"),
        text(v, "versions_evaluated"),
        text(v, "days"),
        text(v, "now")
    );
    for r in v["rules"].as_array().cloned().unwrap_or_default() {
        println!("rule {}:", text(&r, "rule_id"));
        let days = r["days"].as_array().cloned().unwrap_or_default();
        if days.is_empty() {
            println!("  nothing in this window");
        }
        for d in days {
            let day = match d["day"].as_u64() {
                Some(0) => "now".to_owned(),
                Some(n) => format!("day {n}"),
                None => "-".into(),
            };
            let sample: Vec<String> = d["sample"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            println!(
                "  {day} (by {}): {} {} versions, {} bytes; e.g. {}",
                text(&d, "date"),
                text(&d, "action"),
                text(&d, "versions"),
                text(&d, "bytes"),
                sample.join(", ")
            );
        }
    }
}
