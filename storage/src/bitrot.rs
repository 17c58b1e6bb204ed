//! Bitrot protection: every shard block is stored as `xxh3-128(shard) ‖ shard`, and the hash is
//! checked on every read, so a flipped bit on disk is a lost shard, never wrong data.

use crate::layout::HASH_LEN;
use xxhash_rust::xxh3::xxh3_128;

/// Appends `shard` to `out`, preceded by its hash.
pub fn frame_into(out: &mut Vec<u8>, shard: &[u8]) {
    out.extend_from_slice(&xxh3_128(shard).to_le_bytes());
    out.extend_from_slice(shard);
}

/// Writes the hash of `framed[HASH_LEN..]` into `framed[..HASH_LEN]`, for a shard that was
/// built in place behind room left for its hash.
pub fn seal(framed: &mut [u8]) {
    let hash = xxh3_128(&framed[HASH_LEN..]).to_le_bytes();
    framed[..HASH_LEN].copy_from_slice(&hash);
}

/// Returns the shard inside a framed block, or `None` when the hash does not match.
pub fn unframe(framed: &[u8]) -> Option<&[u8]> {
    if framed.len() < HASH_LEN {
        return None;
    }
    let (hash, shard) = framed.split_at(HASH_LEN);
    (hash == xxh3_128(shard).to_le_bytes()).then_some(shard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_any_flipped_byte() {
        let mut framed = Vec::new();
        frame_into(&mut framed, b"some shard bytes");
        assert_eq!(unframe(&framed), Some(&b"some shard bytes"[..]));
        for i in 0..framed.len() {
            let mut bad = framed.clone();
            bad[i] ^= 0x40;
            assert_eq!(unframe(&bad), None, "flip at {i} not detected");
        }
        assert_eq!(unframe(&framed[..5]), None);
        let mut sealed = vec![0u8; HASH_LEN];
        sealed.extend_from_slice(b"some shard bytes");
        seal(&mut sealed);
        assert_eq!(sealed, framed);
    }
}
