//! Erasure layout arithmetic: how many shards, how big, and how many drives make a quorum.
//! Pure functions only, so every rule is unit-tested without I/O.

use serde::{Deserialize, Serialize};

/// Objects are cut into blocks of this many bytes before erasure coding.
pub const BLOCK_SIZE: usize = 1024 * 1024;

/// Bytes of bitrot hash stored in front of every shard block.
pub const HASH_LEN: usize = 16;

/// Objects up to this size are stored inside the metadata record instead of shard files.
pub const INLINE_LIMIT: u64 = 128 * 1024;

/// How an object's blocks are split into data and parity shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureLayout {
    pub data: usize,
    pub parity: usize,
    pub block_size: usize,
}

impl ErasureLayout {
    /// The layout for a set of `drives` drives with `parity` parity shards.
    pub fn new(drives: usize, parity: usize) -> Result<Self, String> {
        if drives == 0 {
            return Err("an erasure set needs at least one drive".into());
        }
        if parity * 2 > drives {
            return Err(format!(
                "parity {parity} is more than half of {drives} drives"
            ));
        }
        Ok(Self {
            data: drives - parity,
            parity,
            block_size: BLOCK_SIZE,
        })
    }

    /// MinIO's default parity for a set of `drives` drives (STANDARD storage class).
    pub fn default_parity(drives: usize) -> usize {
        match drives {
            0 | 1 => 0,
            2 | 3 => 1,
            4 | 5 => 2,
            6 | 7 => 3,
            _ => 4,
        }
    }

    pub fn drives(&self) -> usize {
        self.data + self.parity
    }

    /// Drives that must answer to read: enough shards to rebuild the data.
    pub fn read_quorum(&self) -> usize {
        self.data
    }

    /// Drives that must commit a write; one more than `data` when data == parity, so two
    /// disjoint halves can never both accept conflicting writes.
    pub fn write_quorum(&self) -> usize {
        if self.data == self.parity {
            self.data + 1
        } else {
            self.data
        }
    }

    /// Length of one shard of a block of `block_len` bytes.
    pub fn shard_len(&self, block_len: usize) -> usize {
        block_len.div_ceil(self.data)
    }

    /// Bytes one drive stores for a part of `part_size` bytes, bitrot hashes included.
    pub fn shard_file_size(&self, part_size: u64) -> u64 {
        let full_blocks = part_size / self.block_size as u64;
        let tail = (part_size % self.block_size as u64) as usize;
        let full = full_blocks * (HASH_LEN + self.shard_len(self.block_size)) as u64;
        if tail == 0 {
            full
        } else {
            full + (HASH_LEN + self.shard_len(tail)) as u64
        }
    }

    /// Where block `index` of a part starts in a shard file, and how long its framed shard is.
    pub fn shard_block_span(&self, part_size: u64, index: u64) -> (u64, usize) {
        let stride = (HASH_LEN + self.shard_len(self.block_size)) as u64;
        let start = index * stride;
        let block_start = index * self.block_size as u64;
        let block_len = (part_size - block_start).min(self.block_size as u64) as usize;
        (start, HASH_LEN + self.shard_len(block_len))
    }

    /// Number of blocks in a part of `part_size` bytes.
    pub fn block_count(&self, part_size: u64) -> u64 {
        part_size.div_ceil(self.block_size as u64)
    }
}

/// Which shard a drive position holds for an object: shards rotate by a hash of the key so
/// parity is spread over all drives instead of always landing on the last ones.
pub fn shard_index(drive_position: usize, drives: usize, key_hash: u64) -> usize {
    (drive_position + (key_hash % drives as u64) as usize) % drives
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parity_follows_minio() {
        assert_eq!(ErasureLayout::default_parity(4), 2);
        assert_eq!(ErasureLayout::default_parity(5), 2);
        assert_eq!(ErasureLayout::default_parity(6), 3);
        assert_eq!(ErasureLayout::default_parity(8), 4);
        assert_eq!(ErasureLayout::default_parity(16), 4);
    }

    #[test]
    fn quorums() {
        let l = ErasureLayout::new(4, 2).unwrap();
        assert_eq!((l.read_quorum(), l.write_quorum()), (2, 3));
        let l = ErasureLayout::new(6, 2).unwrap();
        assert_eq!((l.read_quorum(), l.write_quorum()), (4, 4));
        let l = ErasureLayout::new(1, 0).unwrap();
        assert_eq!((l.read_quorum(), l.write_quorum()), (1, 1));
        assert!(ErasureLayout::new(4, 3).is_err());
        assert!(ErasureLayout::new(0, 0).is_err());
    }

    #[test]
    fn shard_file_size_counts_hashes_and_tail() {
        let l = ErasureLayout::new(4, 2).unwrap();
        assert_eq!(l.shard_file_size(0), 0);
        assert_eq!(l.shard_file_size(1), 16 + 1);
        assert_eq!(
            l.shard_file_size(BLOCK_SIZE as u64),
            (16 + BLOCK_SIZE / 2) as u64
        );
        assert_eq!(
            l.shard_file_size(BLOCK_SIZE as u64 + 3),
            (16 + BLOCK_SIZE / 2 + 16 + 2) as u64
        );
        let (start, len) = l.shard_block_span(BLOCK_SIZE as u64 + 3, 1);
        assert_eq!((start, len), ((16 + BLOCK_SIZE / 2) as u64, 16 + 2));
    }

    #[test]
    fn shard_rotation_is_a_permutation() {
        for hash in 0..10u64 {
            let mut seen: Vec<usize> = (0..6).map(|d| shard_index(d, 6, hash)).collect();
            seen.sort();
            assert_eq!(seen, (0..6).collect::<Vec<_>>());
        }
    }
}
