//! Erasure-coding micro-benchmark: encode and reconstruct 1 MiB blocks for the layouts a
//! deployment uses, plus the bitrot hash and MD5. `cargo bench -p strata-storage --bench erasure`.
//! Prints GiB/s of object data; no timing assertions.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Instant;
use storage::erasure::Erasure;
use storage::layout::{ErasureLayout, BLOCK_SIZE};

fn gib_per_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / (1u64 << 30) as f64
}

fn main() {
    let block: Vec<u8> = (0..BLOCK_SIZE).map(|i| (i * 7 % 251) as u8).collect();
    let rounds = 400;
    for (drives, parity) in [(4, 2), (8, 4), (12, 4), (16, 4)] {
        let layout = ErasureLayout::new(drives, parity).expect("valid layout");
        let erasure = Erasure::new(layout);
        for _ in 0..20 {
            black_box(erasure.encode_block(black_box(&block))); // warm up allocator and caches
        }
        let started = Instant::now();
        for _ in 0..rounds {
            black_box(erasure.encode_block(black_box(&block)));
        }
        let encode = gib_per_s(BLOCK_SIZE * rounds, started.elapsed().as_secs_f64());

        let framed = erasure.encode_block(&block);
        let shards: Vec<Option<Vec<u8>>> = framed.iter().map(|f| Some(f[16..].to_vec())).collect();
        let started = Instant::now();
        for _ in 0..rounds {
            let mut lost = shards.clone();
            for s in lost.iter_mut().take(parity) {
                *s = None;
            }
            erasure.reconstruct_data(&mut lost).expect("enough shards");
            black_box(lost);
        }
        let reconstruct = gib_per_s(BLOCK_SIZE * rounds, started.elapsed().as_secs_f64());
        println!(
            "EC {}+{}: encode {encode:.2} GiB/s, reconstruct with {parity} data shards lost {reconstruct:.2} GiB/s",
            layout.data, layout.parity
        );
    }
    let started = Instant::now();
    for _ in 0..rounds * 4 {
        black_box(xxhash_rust::xxh3::xxh3_128(black_box(&block)));
    }
    println!(
        "bitrot hash xxh3-128: {:.2} GiB/s",
        gib_per_s(BLOCK_SIZE * rounds * 4, started.elapsed().as_secs_f64())
    );
    // The ETag's MD5, the one per-byte cost of a PUT that cannot be spread over cores.
    use md5::{Digest, Md5};
    let started = Instant::now();
    let mut md5 = Md5::new();
    for _ in 0..rounds {
        md5.update(black_box(&block));
    }
    black_box(md5.finalize());
    println!(
        "MD5 (ETag, one core): {:.0} MiB/s",
        (BLOCK_SIZE * rounds) as f64 / started.elapsed().as_secs_f64() / (1 << 20) as f64
    );
}
