//! Replication targets: where a source bucket's versions go (an S3 endpoint and bucket with
//! credentials), registered by `strata admin replicate add-target` and stored as one document
//! (`replication-targets`, JSON) in the cluster configuration, each with its built client.

use crate::client::TargetClient;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use storage::ClusterConfig;

/// The cluster configuration document holding the targets.
pub const DOCUMENT: &str = "replication-targets";

/// One target, as stored.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetConfig {
    /// `arn:strata:replication::<id>:<target bucket>`, named by rules' Destination.
    pub arn: String,
    /// The source bucket the target was registered for.
    pub bucket: String,
    /// The target's S3 endpoint URL.
    pub endpoint: String,
    pub target_bucket: String,
    pub access_key: String,
    /// The secret as given (`env:NAME` reads it from the environment).
    pub secret_key: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub path_style: bool,
    /// Bytes per second the target may take (`None`: no limit).
    #[serde(default)]
    pub bandwidth: Option<u64>,
    /// No entries are sent while paused (they stay queued).
    #[serde(default)]
    pub paused: bool,
    /// Deletes that name a version replicate too (as MinIO's `DeleteReplication`).
    #[serde(default)]
    pub version_deletes: bool,
}

impl std::fmt::Debug for TargetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetConfig")
            .field("arn", &self.arn)
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("target_bucket", &self.target_bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &tiering::config::mask(&self.secret_key))
            .finish_non_exhaustive()
    }
}

impl TargetConfig {
    /// A new target's ARN: a fresh id and the target bucket.
    pub fn new_arn(target_bucket: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("arn:strata:replication::{}:{target_bucket}", &id[..12])
    }

    pub fn validate(&self) -> Result<(), String> {
        let url = url::Url::parse(&self.endpoint)
            .map_err(|e| format!("the target URL {} is not a URL: {e}", self.endpoint))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("the target URL must be http:// or https://".into());
        }
        if self.target_bucket.is_empty() || self.access_key.is_empty() {
            return Err("a target needs a bucket and an access key".into());
        }
        if self.bandwidth == Some(0) {
            return Err("a bandwidth limit must be above 0 bytes/s".into());
        }
        Ok(())
    }

    /// The settings as shown to operators: the secret masked.
    pub fn masked(&self) -> Self {
        Self {
            secret_key: tiering::config::mask(&self.secret_key),
            ..self.clone()
        }
    }
}

/// A target with its client.
#[derive(Clone)]
pub struct Target {
    pub config: TargetConfig,
    pub client: Arc<TargetClient>,
}

/// Every target by ARN.
pub struct Targets {
    config: Arc<dyn ClusterConfig>,
    targets: RwLock<BTreeMap<String, Target>>,
    /// One change at a time (read, change, write back).
    changing: tokio::sync::Mutex<()>,
}

impl Targets {
    /// Loads the stored targets. A target whose client cannot be built (a secret's
    /// environment variable unset) is logged and left out until `edit` fixes it.
    pub async fn load(config: Arc<dyn ClusterConfig>) -> Result<Self, String> {
        let targets = Self {
            config,
            targets: RwLock::new(BTreeMap::new()),
            changing: tokio::sync::Mutex::new(()),
        };
        let mut loaded = BTreeMap::new();
        for t in targets.stored().await? {
            match TargetClient::new(&t) {
                Ok(client) => {
                    loaded.insert(
                        t.arn.clone(),
                        Target {
                            config: t,
                            client: Arc::new(client),
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(target_arn = %t.arn, error = %e, "replication target unusable")
                }
            }
        }
        *targets.targets.write().expect("lock") = loaded;
        Ok(targets)
    }

    async fn stored(&self) -> Result<Vec<TargetConfig>, String> {
        match self.config.get(DOCUMENT).await.map_err(|e| e.to_string())? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("the stored replication targets are unreadable: {e}")),
            None => Ok(Vec::new()),
        }
    }

    pub fn get(&self, arn: &str) -> Option<Target> {
        self.targets.read().expect("lock").get(arn).cloned()
    }

    /// Every target's settings (secrets as stored: mask before showing).
    pub fn list(&self) -> Vec<TargetConfig> {
        self.targets
            .read()
            .expect("lock")
            .values()
            .map(|t| t.config.clone())
            .collect()
    }

    /// Adds a target.
    pub async fn add(&self, target: TargetConfig) -> Result<(), String> {
        self.change(&target.arn.clone(), |stored| {
            if stored.iter().any(|t| t.arn == target.arn) {
                return Err(format!("target {} exists already", target.arn));
            }
            stored.push(target);
            Ok(())
        })
        .await
    }

    /// Replaces target `arn`'s settings with `change(settings)`.
    pub async fn edit(
        &self,
        arn: &str,
        change: impl FnOnce(&mut TargetConfig),
    ) -> Result<TargetConfig, String> {
        let mut out = None;
        self.change(arn, |stored| {
            let t = stored
                .iter_mut()
                .find(|t| t.arn == arn)
                .ok_or_else(|| format!("no replication target {arn}"))?;
            change(t);
            out = Some(t.clone());
            Ok(())
        })
        .await?;
        Ok(out.expect("changed"))
    }

    /// Removes a target (the caller checked that no rule names it).
    pub async fn remove(&self, arn: &str) -> Result<(), String> {
        self.change(arn, |stored| {
            let before = stored.len();
            stored.retain(|t| t.arn != arn);
            if stored.len() == before {
                return Err(format!("no replication target {arn}"));
            }
            Ok(())
        })
        .await
    }

    /// Reads the stored list, changes it, checks and stores it, then rebuilds target `arn`'s
    /// client.
    async fn change(
        &self,
        arn: &str,
        change: impl FnOnce(&mut Vec<TargetConfig>) -> Result<(), String>,
    ) -> Result<(), String> {
        let _one = self.changing.lock().await;
        let mut stored = self.stored().await?;
        change(&mut stored)?;
        let changed = stored.iter().find(|t| t.arn == arn).cloned();
        let client = match &changed {
            Some(t) => {
                t.validate()?;
                Some(Arc::new(TargetClient::new(t)?))
            }
            None => None,
        };
        let bytes = serde_json::to_vec(&stored).expect("targets serialize");
        self.config
            .set(DOCUMENT, Some(bytes))
            .await
            .map_err(|e| format!("could not store the replication targets: {e}"))?;
        let mut targets = self.targets.write().expect("lock");
        match (changed, client) {
            (Some(config), Some(client)) => {
                targets.insert(arn.to_owned(), Target { config, client });
            }
            _ => {
                targets.remove(arn);
            }
        }
        Ok(())
    }
}
