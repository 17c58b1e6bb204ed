//! Reed–Solomon coding of one block at a time: a block becomes `data + parity` framed shards,
//! and any `data` of them give the block back.

use crate::bitrot;
use crate::layout::{ErasureLayout, HASH_LEN};
use reed_solomon_erasure::galois_8::ReedSolomon;

/// Encoder/decoder for one layout; cheap to share between requests.
pub struct Erasure {
    layout: ErasureLayout,
    codec: Option<ReedSolomon>,
}

impl Erasure {
    pub fn new(layout: ErasureLayout) -> Self {
        // reed-solomon-erasure refuses zero parity; with no parity the shards are plain slices.
        let codec = (layout.parity > 0)
            .then(|| ReedSolomon::new(layout.data, layout.parity).expect("layout validated"));
        Self { layout, codec }
    }

    pub fn layout(&self) -> ErasureLayout {
        self.layout
    }

    /// Splits `block` into framed shards (hash ‖ shard), one per drive, in shard order. Each
    /// shard is built in place in its final buffer: one allocation and no copy per shard.
    pub fn encode_block(&self, block: &[u8]) -> Vec<Vec<u8>> {
        let len = self.layout.shard_len(block.len());
        let mut framed: Vec<Vec<u8>> = (0..self.layout.drives())
            .map(|i| {
                if i >= self.layout.data {
                    return vec![0u8; HASH_LEN + len];
                }
                // Data shards are copied in, not zeroed first: only the hash room and the
                // last shard's padding are filled.
                let mut f = Vec::with_capacity(HASH_LEN + len);
                f.resize(HASH_LEN, 0);
                let start = (i * len).min(block.len());
                let end = ((i + 1) * len).min(block.len());
                f.extend_from_slice(&block[start..end]);
                f.resize(HASH_LEN + len, 0);
                f
            })
            .collect();
        if let Some(codec) = &self.codec {
            let mut shards: Vec<&mut [u8]> =
                framed.iter_mut().map(|f| &mut f[HASH_LEN..]).collect();
            codec.encode(&mut shards).expect("shards sized by layout");
        }
        for f in &mut framed {
            bitrot::seal(f);
        }
        framed
    }

    /// Rebuilds every missing shard in place. `shards[i]` is shard `i` (unframed) or `None`.
    /// Fails when fewer than `data` shards are present.
    pub fn reconstruct(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), String> {
        self.rebuild(shards, false)
    }

    /// Rebuilds only the missing data shards (cheaper than `reconstruct` for reads).
    pub fn reconstruct_data(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), String> {
        self.rebuild(shards, true)
    }

    fn rebuild(&self, shards: &mut [Option<Vec<u8>>], data_only: bool) -> Result<(), String> {
        let present = shards.iter().filter(|s| s.is_some()).count();
        if present < self.layout.data {
            return Err(format!(
                "{present} of {} shards readable, {} needed",
                shards.len(),
                self.layout.data
            ));
        }
        match &self.codec {
            Some(codec) if data_only => codec.reconstruct_data(shards).map_err(|e| e.to_string()),
            Some(codec) => codec.reconstruct(shards).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

/// Joins the data shards of a block and cuts the zero padding off.
pub fn join_data(shards: &[Option<Vec<u8>>], data: usize, block_len: usize, out: &mut Vec<u8>) {
    let start = out.len();
    for s in shards.iter().take(data) {
        out.extend_from_slice(s.as_ref().expect("data shards reconstructed"));
    }
    out.truncate(start + block_len);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn unframed(framed: &[Vec<u8>]) -> Vec<Option<Vec<u8>>> {
        framed
            .iter()
            .map(|f| Some(bitrot::unframe(f).unwrap().to_vec()))
            .collect()
    }

    #[test]
    fn round_trips_every_layout_with_up_to_parity_shards_missing() {
        for drives in 1..=16 {
            let parity = ErasureLayout::default_parity(drives);
            let layout = ErasureLayout::new(drives, parity).unwrap();
            let erasure = Erasure::new(layout);
            for len in [1usize, 7, 4096, 100_003] {
                let block = sample(len);
                let framed = erasure.encode_block(&block);
                assert_eq!(framed.len(), drives);
                // lose the first `parity` shards, then the last `parity` shards
                for lose_front in [true, false] {
                    let mut shards = unframed(&framed);
                    for i in 0..parity {
                        let idx = if lose_front { i } else { drives - 1 - i };
                        shards[idx] = None;
                    }
                    erasure.reconstruct_data(&mut shards).unwrap();
                    let mut out = Vec::new();
                    join_data(&shards, layout.data, len, &mut out);
                    assert_eq!(out, block, "drives {drives} len {len}");
                }
            }
        }
    }

    #[test]
    fn full_reconstruct_restores_parity_too() {
        let layout = ErasureLayout::new(6, 3).unwrap();
        let erasure = Erasure::new(layout);
        let framed = erasure.encode_block(&sample(5000));
        let original = unframed(&framed);
        let mut shards = original.clone();
        shards[0] = None;
        shards[4] = None;
        shards[5] = None;
        erasure.reconstruct(&mut shards).unwrap();
        assert_eq!(shards, original);
    }

    #[test]
    fn too_many_missing_is_an_error() {
        let layout = ErasureLayout::new(4, 2).unwrap();
        let erasure = Erasure::new(layout);
        let framed = erasure.encode_block(&sample(100));
        let mut shards = unframed(&framed);
        shards[0] = None;
        shards[1] = None;
        shards[2] = None;
        assert!(erasure.reconstruct_data(&mut shards).is_err());
    }
}
