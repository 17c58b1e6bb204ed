//! Direct uploads to and reads from a remote tier with the tier's own client (the code a
//! transition and a tiered GET use), to measure Strata's transitions and tiered reads against:
//! `tier-bench --tier tier.json --op put|get --size 64MiB --count 8 --concurrency 4`.
//! `tier.json` is a tier as `strata admin tier add` stores it. Prints MiB/s.

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use futures::StreamExt;
use std::time::Instant;
use tiering::remote::ByteStream;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Op {
    Put,
    Get,
}

#[derive(Parser, Debug)]
struct Args {
    /// A tier's settings as JSON (the fields of `strata admin tier add`).
    #[arg(long)]
    tier: std::path::PathBuf,
    #[arg(long, value_enum)]
    op: Op,
    /// Object size in MiB.
    #[arg(long, default_value_t = 64)]
    size_mib: u64,
    #[arg(long, default_value_t = 8)]
    count: usize,
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[arg(long, default_value = "tier-bench/")]
    prefix: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: tiering::TierConfig = serde_json::from_slice(&std::fs::read(&args.tier)?)?;
    let tier = tiering::registry::client(&config).map_err(anyhow::Error::msg)?;
    let size = args.size_mib << 20;
    let block = Bytes::from(
        (0..1u32 << 20)
            .map(|i| (i * 7 + 3) as u8)
            .collect::<Vec<u8>>(),
    );
    let started = Instant::now();
    let results: Vec<anyhow::Result<u64>> = futures::stream::iter(0..args.count)
        .map(|i| {
            let (tier, block, key) = (tier.clone(), block.clone(), format!("{}{i}", args.prefix));
            async move {
                match args.op {
                    Op::Put => {
                        let chunks = (0..size >> 20).map(move |_| Ok(block.clone()));
                        let body: ByteStream = futures::stream::iter(chunks).boxed();
                        tier.put(&key, body, size).await?;
                        Ok(size)
                    }
                    Op::Get => {
                        let mut stream = tier.get_range(&key, 0, size).await?;
                        let mut n = 0u64;
                        while let Some(chunk) = stream.next().await {
                            n += chunk?.len() as u64;
                        }
                        Ok(n)
                    }
                }
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let mut bytes = 0;
    for r in results {
        bytes += r?;
    }
    println!(
        "op={:?} kind={} count={} size={}MiB concurrency={} seconds={secs:.2} MiB/s={:.1}",
        args.op,
        config.kind(),
        args.count,
        args.size_mib,
        args.concurrency,
        bytes as f64 / secs / (1 << 20) as f64
    );
    Ok(())
}
