//! Listing: each drive keeps its keys in an ordered index; a set merges its drives' pages and
//! keeps only keys a read quorum agrees on, and the store merges its sets and applies prefix,
//! delimiter and paging. Skipping over a common prefix is one index seek, not a walk.

use crate::error::{Result, StorageError};
use crate::meta::{ObjectRecord, VersionRecord};
use crate::set::ErasureSet;
use futures::future::join_all;
use std::collections::BTreeMap;

/// A listed object: its key and current version.
#[derive(Clone, Debug)]
pub struct ListedObject {
    pub key: String,
    pub version: VersionRecord,
}

/// One page of a listing.
#[derive(Debug, Default)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    pub common_prefixes: Vec<String>,
    /// Where the next page starts (an inclusive lower bound), when the listing was truncated.
    pub next: Option<Vec<u8>>,
}

/// The smallest byte string greater than every string that starts with `prefix`;
/// `None` when there is none (empty prefix or all 0xFF).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xFF {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

/// The smallest byte string greater than `key`.
pub fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut s = key.to_vec();
    s.push(0);
    s
}

/// Merges sorted batches. A batch that came back full may have more keys after its last one,
/// so only keys up to the smallest such last key (the horizon) are complete. Returns, per key,
/// which batches had it, and the horizon.
pub(crate) fn merge_batches<V: Clone>(
    batches: Vec<(Vec<(String, V)>, bool)>,
) -> (BTreeMap<String, Vec<Option<V>>>, Option<String>) {
    let horizon = batches
        .iter()
        .filter(|(b, full)| *full && !b.is_empty())
        .map(|(b, _)| b.last().expect("non-empty").0.clone())
        .min();
    let sources = batches.len();
    let mut merged: BTreeMap<String, Vec<Option<V>>> = BTreeMap::new();
    for (i, (batch, _)) in batches.into_iter().enumerate() {
        for (key, value) in batch {
            if horizon.as_ref().is_some_and(|h| &key > h) {
                break;
            }
            merged.entry(key).or_insert_with(|| vec![None; sources])[i] = Some(value);
        }
    }
    (merged, horizon)
}

/// A walk over one erasure set's keys of a bucket, in order, a page of quorum-resolved
/// records at a time (what background work such as lifecycle scans).
pub struct SetWalk {
    lower: Vec<u8>,
    done: bool,
}

impl SetWalk {
    /// A walk from the inclusive lower bound `lower` (empty: the first key).
    pub fn from(lower: Vec<u8>) -> Self {
        Self { lower, done: false }
    }

    /// The next page of at most `limit` keys (possibly empty while more may follow), or
    /// `None` once the set has no more keys.
    pub async fn next_page(
        &mut self,
        set: &ErasureSet,
        bucket: &str,
        limit: usize,
    ) -> Result<Option<Vec<(String, ObjectRecord)>>> {
        if self.done {
            return Ok(None);
        }
        let (entries, next) = set.list_resolved(bucket, &self.lower, None, limit).await?;
        if let Some((key, _)) = entries.last() {
            self.lower = key_successor(key.as_bytes());
        }
        match next {
            Some(h) if h > self.lower => self.lower = h,
            Some(_) => {}
            None => self.done = true,
        }
        if self.done && entries.is_empty() {
            return Ok(None);
        }
        Ok(Some(entries))
    }
}

impl ErasureSet {
    /// Keys in `[lower, upper)` that a read quorum of drives holds, with their current version
    /// (delete markers included), and the lower bound to continue from if there may be more.
    pub async fn list_resolved(
        &self,
        bucket: &str,
        lower: &[u8],
        upper: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<(String, ObjectRecord)>, Option<Vec<u8>>)> {
        let answers = join_all(self.drives.iter().map(|d| async move {
            if !d.is_online() {
                return None;
            }
            d.list_records(bucket, lower, upper, limit).await.ok()
        }))
        .await;
        let answered = answers.iter().filter(|a| a.is_some()).count();
        if answered < self.layout.read_quorum() {
            return Err(StorageError::Quorum {
                what: "listing",
                got: answered,
                needed: self.layout.read_quorum(),
            });
        }
        let answering: Vec<bool> = answers.iter().map(Option::is_some).collect();
        let batches: Vec<(Vec<(String, ObjectRecord)>, bool)> = answers
            .into_iter()
            .map(|a| match a {
                Some(b) => {
                    let full = b.len() >= limit;
                    (b, full)
                }
                None => (Vec::new(), false),
            })
            .collect();
        let (merged, horizon) = merge_batches(batches);
        let mut out = Vec::with_capacity(merged.len());
        for (key, per_drive) in merged {
            let records: Vec<Option<Option<ObjectRecord>>> = per_drive
                .into_iter()
                .zip(&answering)
                .map(|(r, answered)| answered.then_some(r))
                .collect();
            let Ok(agreement) = self.agree(&records) else {
                continue;
            };
            if agreement.value.is_none() {
                continue;
            }
            if let Some(rec) = records
                .into_iter()
                .zip(&agreement.agree)
                .find_map(|(r, ok)| if *ok { r.flatten() } else { None })
            {
                out.push((key, rec));
            }
        }
        Ok((out, horizon.map(|h| key_successor(h.as_bytes()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successors() {
        assert_eq!(prefix_successor(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b""), None);
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert_eq!(key_successor(b"ab"), b"ab\0".to_vec());
        assert!(key_successor(b"ab").as_slice() < b"ab/".as_slice());
    }

    #[test]
    fn merge_stops_at_the_horizon_of_full_batches() {
        let b = |keys: &[&str], full| {
            (
                keys.iter().map(|k| (k.to_string(), 1)).collect::<Vec<_>>(),
                full,
            )
        };
        let batches = vec![
            b(&["a", "c", "e"], true),
            b(&["a", "b", "c", "d", "f"], true),
            b(&["a", "z"], false),
        ];
        let (merged, horizon) = merge_batches(batches);
        assert_eq!(horizon.as_deref(), Some("e"));
        let keys: Vec<&str> = merged.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "b", "c", "d", "e"]);
        assert_eq!(merged["a"], vec![Some(1), Some(1), Some(1)]);
        assert_eq!(merged["b"], vec![None, Some(1), None]);
    }
}
