//! `strata-bench`: a load generator for any S3 endpoint (like MinIO's warp). Workers issue
//! signed requests for a fixed duration and the tool prints throughput and latency
//! percentiles. It measures Strata and other S3 servers with the same client.

use anyhow::{bail, Context, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Op {
    Put,
    Get,
    List,
    Mixed,
}

#[derive(Parser, Debug)]
#[command(about = "S3 load generator: PUT / GET / LIST / mixed against any S3 endpoint")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY")]
    secret_key: String,
    #[arg(long, default_value = "strata-bench")]
    bucket: String,
    #[arg(long, value_enum)]
    op: Op,
    /// Object size: bytes, or with a KiB / MiB / GiB suffix.
    #[arg(long, default_value = "1MiB")]
    size: String,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Objects written before a GET, LIST or mixed run, and read from during it.
    #[arg(long, default_value_t = 64)]
    objects: usize,
    /// Key prefix for this run's objects.
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// PUT over this many keys in turn (each PUT of a key adds a version in a versioned
    /// bucket) instead of a new key per PUT.
    #[arg(long)]
    keys: Option<u64>,
    /// Read the objects an earlier run wrote (same --prefix, --objects and --size) instead of
    /// writing them first: for measuring a server that cannot take writes, e.g. degraded.
    #[arg(long)]
    no_prefill: bool,
}

/// Characters S3 keys keep unescaped in a request path.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn parse_size(s: &str) -> Result<usize> {
    let s = s.trim();
    let (num, mult) = match s {
        _ if s.ends_with("GiB") => (&s[..s.len() - 3], 1 << 30),
        _ if s.ends_with("MiB") => (&s[..s.len() - 3], 1 << 20),
        _ if s.ends_with("KiB") => (&s[..s.len() - 3], 1 << 10),
        _ => (s, 1),
    };
    Ok(num
        .trim()
        .parse::<usize>()
        .with_context(|| format!("bad size {s}"))?
        * mult)
}

/// A minimal signed S3 client over one pooled hyper client.
struct S3 {
    http: Client<HttpConnector, Full<Bytes>>,
    endpoint: String,
    identity: Identity,
}

impl S3 {
    async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: Bytes,
    ) -> Result<(http::StatusCode, Bytes)> {
        let url = format!("{}{}", self.endpoint, path_and_query);
        let mut req = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            // hyper leaves Content-Length out of an empty body, and S3 refuses a PUT
            // without one: every request states it.
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(Full::new(body))?;
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or("")));
        let signable = SignableRequest::new(method, &url, headers, SignableBody::UnsignedPayload)?;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region("us-east-1")
            .name("s3")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let (instructions, _) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(&mut req);
        let resp = self.http.request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    async fn ensure_bucket(&self, bucket: &str) -> Result<()> {
        let (status, body) = self
            .send("PUT", &format!("/{bucket}"), Bytes::new())
            .await?;
        if !status.is_success()
            && !String::from_utf8_lossy(&body).contains("BucketAlreadyOwnedByYou")
        {
            bail!(
                "create bucket {bucket}: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    }
}

fn object_path(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{}", utf8_percent_encode(key, PATH))
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    bytes: u64,
    errors: u64,
}

async fn worker(
    s3: Arc<S3>,
    args: Arc<Args>,
    id: usize,
    body: Bytes,
    stop: Arc<AtomicBool>,
) -> Tally {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(id as u64);
    let mut tally = Tally::default();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let op = match args.op {
            Op::Mixed => match rng.random_range(0..100) {
                0..60 => Op::Get,
                60..90 => Op::Put,
                _ => Op::List,
            },
            op => op,
        };
        let started = Instant::now();
        let result = match op {
            Op::Put => {
                let key = match args.keys {
                    Some(k) => format!(
                        "{}/{:09}",
                        args.prefix,
                        (n * args.concurrency as u64 + id as u64) % k.max(1)
                    ),
                    None => format!("{}/w{id}/{n}", args.prefix),
                };
                n += 1;
                s3.send("PUT", &object_path(&args.bucket, &key), body.clone())
                    .await
                    .map(|(s, _)| (s, body.len()))
            }
            Op::Get => {
                let key = format!("{}/pre/{}", args.prefix, rng.random_range(0..args.objects));
                s3.send("GET", &object_path(&args.bucket, &key), Bytes::new())
                    .await
                    .map(|(s, b)| (s, b.len()))
            }
            Op::List | Op::Mixed => {
                let q = format!(
                    "/{}?list-type=2&max-keys=1000&prefix={}%2F",
                    args.bucket, args.prefix
                );
                s3.send("GET", &q, Bytes::new())
                    .await
                    .map(|(s, b)| (s, b.len()))
            }
        };
        match result {
            Ok((status, len)) if status.is_success() => {
                tally
                    .latencies_us
                    .push(started.elapsed().as_micros() as u64);
                tally.bytes += len as u64;
            }
            _ => tally.errors += 1,
        }
    }
    tally
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Arc::new(Args::parse());
    let size = parse_size(&args.size)?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency * 2)
        .build(connector);
    let identity = Credentials::new(
        &args.access_key,
        &args.secret_key,
        None,
        None,
        "strata-bench",
    )
    .into();
    let s3 = Arc::new(S3 {
        http,
        endpoint: args.endpoint.trim_end_matches('/').to_owned(),
        identity,
    });
    if !args.no_prefill {
        s3.ensure_bucket(&args.bucket).await?;
    }
    let mut data = vec![0u8; size];
    rand::rngs::SmallRng::seed_from_u64(42).fill(&mut data[..]);
    let body = Bytes::from(data);
    if args.op != Op::Put && !args.no_prefill {
        for i in 0..args.objects {
            let key = format!("{}/pre/{i}", args.prefix);
            let (status, b) = s3
                .send("PUT", &object_path(&args.bucket, &key), body.clone())
                .await?;
            if !status.is_success() {
                bail!("prefill {key}: {status} {}", String::from_utf8_lossy(&b));
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..args.concurrency)
        .map(|id| {
            tokio::spawn(worker(
                s3.clone(),
                args.clone(),
                id,
                body.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Tally::default();
    for h in handles {
        let t = h.await?;
        all.latencies_us.extend(t.latencies_us);
        all.bytes += t.bytes;
        all.errors += t.errors;
    }
    let secs = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let ops = all.latencies_us.len();
    println!(
        "op={:?} size={} concurrency={} duration={:.1}s ops={} errors={} ops/s={:.1} MiB/s={:.1} p50={:.2}ms p99={:.2}ms max={:.2}ms",
        args.op,
        args.size,
        args.concurrency,
        secs,
        ops,
        all.errors,
        ops as f64 / secs,
        all.bytes as f64 / secs / (1 << 20) as f64,
        percentile(&all.latencies_us, 0.5),
        percentile(&all.latencies_us, 0.99),
        percentile(&all.latencies_us, 1.0),
    );
    Ok(())
}
