//! Where bucket records (every bucket configuration document, and the reserved cluster
//! configuration record) live, behind one interface. On one node they are kept on every drive
//! (quorum, cached; `Store` does this itself); in a cluster a [`BucketCatalog`] holds them in a
//! replicated state machine ([`crate::raft`]). Changes are operations, not whole records, so two
//! changes to one bucket through different nodes never undo each other.

use crate::error::{Result, StorageError};
use crate::meta::BucketRecord;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One change to the bucket records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CatalogChange {
    /// Creates a bucket; refused when one of that name exists.
    CreateBucket(BucketRecord),
    /// Sets (or with `None` removes) one configuration document of a bucket; with `create`, a
    /// missing record is created first (the reserved cluster configuration record).
    SetConfig {
        bucket: String,
        document: String,
        value: Option<Vec<u8>>,
        create: bool,
        /// When the change was asked for (ns since the epoch): the record's `updated_ns`.
        now_ns: i64,
    },
    DeleteBucket(String),
}

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogAnswer {
    Done,
    BucketExists,
    NoSuchBucket,
}

impl CatalogAnswer {
    pub fn into_result(self) -> Result<()> {
        match self {
            Self::Done => Ok(()),
            Self::BucketExists => Err(StorageError::BucketExists),
            Self::NoSuchBucket => Err(StorageError::NoSuchBucket),
        }
    }
}

/// Applies a change to the records, deterministically (every replica applies the same changes
/// in the same order and gets the same records).
pub fn apply(
    records: &mut BTreeMap<String, BucketRecord>,
    change: &CatalogChange,
) -> CatalogAnswer {
    match change {
        CatalogChange::CreateBucket(record) => {
            if records.contains_key(&record.name) {
                return CatalogAnswer::BucketExists;
            }
            records.insert(record.name.clone(), record.clone());
            CatalogAnswer::Done
        }
        CatalogChange::SetConfig {
            bucket,
            document,
            value,
            create,
            now_ns,
        } => {
            let record = match records.get_mut(bucket) {
                Some(r) => r,
                None if *create => records.entry(bucket.clone()).or_insert(BucketRecord {
                    name: bucket.clone(),
                    created_ns: 0,
                    config: BTreeMap::new(),
                    updated_ns: 0,
                }),
                None => return CatalogAnswer::NoSuchBucket,
            };
            match value {
                Some(v) => record.config.insert(document.clone(), v.clone()),
                None => record.config.remove(document),
            };
            record.updated_ns = (*now_ns).max(record.updated_ns + 1);
            CatalogAnswer::Done
        }
        CatalogChange::DeleteBucket(name) => match records.remove(name) {
            Some(_) => CatalogAnswer::Done,
            None => CatalogAnswer::NoSuchBucket,
        },
    }
}

/// Bucket records held outside the drives (a cluster's replicated state machine).
#[async_trait]
pub trait BucketCatalog: Send + Sync {
    /// The record as this node knows it: every change this node or any node it can reach made
    /// was applied here before that change was answered.
    fn get(&self, name: &str) -> Option<BucketRecord>;
    /// Every record, by name.
    fn list(&self) -> Vec<BucketRecord>;
    /// Makes a change once a majority of the nodes accepted it, and waits until the nodes this
    /// node can reach applied it; [`StorageError::Quorum`] when no majority can be reached.
    async fn change(&self, change: CatalogChange) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> BucketRecord {
        BucketRecord {
            name: name.into(),
            created_ns: 5,
            config: BTreeMap::new(),
            updated_ns: 5,
        }
    }

    #[test]
    fn changes_apply_as_operations() {
        let mut r = BTreeMap::new();
        let create = CatalogChange::CreateBucket(record("b"));
        assert_eq!(apply(&mut r, &create), CatalogAnswer::Done);
        assert_eq!(apply(&mut r, &create), CatalogAnswer::BucketExists);
        let set = |doc: &str, v: Option<&str>| CatalogChange::SetConfig {
            bucket: "b".into(),
            document: doc.into(),
            value: v.map(|v| v.as_bytes().to_vec()),
            create: false,
            now_ns: 1,
        };
        // Two documents set one after the other are both kept (no record-level overwrite).
        apply(&mut r, &set("versioning", Some("on")));
        apply(&mut r, &set("tagging", Some("t")));
        assert_eq!(r["b"].config.len(), 2);
        assert!(r["b"].updated_ns > 5, "a change moves updated_ns forward");
        apply(&mut r, &set("tagging", None));
        assert_eq!(r["b"].config.keys().collect::<Vec<_>>(), ["versioning"]);
        let missing = CatalogChange::SetConfig {
            bucket: "nope".into(),
            document: "x".into(),
            value: None,
            create: false,
            now_ns: 1,
        };
        assert_eq!(apply(&mut r, &missing), CatalogAnswer::NoSuchBucket);
        let created = CatalogChange::SetConfig {
            bucket: ".cluster".into(),
            document: "tiers".into(),
            value: Some(vec![1]),
            create: true,
            now_ns: 1,
        };
        assert_eq!(apply(&mut r, &created), CatalogAnswer::Done);
        assert_eq!(r[".cluster"].config["tiers"], vec![1]);
        let delete = CatalogChange::DeleteBucket("b".into());
        assert_eq!(apply(&mut r, &delete), CatalogAnswer::Done);
        assert_eq!(apply(&mut r, &delete), CatalogAnswer::NoSuchBucket);
    }
}
