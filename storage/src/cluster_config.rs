//! Cluster-wide configuration (the tier registry, later replication targets, users): named
//! documents behind one interface, so the multi-node cluster can move them onto consensus
//! without touching their callers. On one node they live in a reserved record on every drive,
//! written and read with the same quorums as bucket records.

use crate::error::Result;
use crate::meta::BucketRecord;
use crate::store::Store;
use async_trait::async_trait;

/// Named configuration documents shared by every node of the deployment.
#[async_trait]
pub trait ClusterConfig: Send + Sync {
    /// The document `name`, if one is stored.
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// Stores (or with `None` removes) the document `name`; answers once a quorum has it.
    async fn set(&self, name: &str, value: Option<Vec<u8>>) -> Result<()>;
}

/// The reserved record; its name is no valid bucket name, so no client can address it.
pub(crate) const RECORD: &str = ".cluster";

#[async_trait]
impl ClusterConfig for Store {
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self.bucket_record(RECORD).await {
            Ok(record) => Ok(record.config.get(name).cloned()),
            Err(crate::StorageError::NoSuchBucket) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn set(&self, name: &str, value: Option<Vec<u8>>) -> Result<()> {
        let _one_writer = self.bucket_lock(RECORD).await?;
        if self.has_catalog() {
            return self.set_bucket_config_locked(RECORD, name, value).await;
        }
        match self.bucket_record(RECORD).await {
            Ok(_) => self.set_bucket_config_locked(RECORD, name, value).await,
            Err(crate::StorageError::NoSuchBucket) => {
                let record = BucketRecord {
                    name: RECORD.into(),
                    created_ns: 0,
                    config: value.map(|v| (name.to_owned(), v)).into_iter().collect(),
                    updated_ns: crate::meta::now_ns(),
                };
                self.put_bucket_record(&record).await
            }
            Err(e) => Err(e),
        }
    }
}
