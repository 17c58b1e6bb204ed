//! The tier registry: every tier's settings, stored as one document (`tiers`, JSON) in the
//! cluster configuration, and a built client per tier.

use crate::config::{Kind, TierConfig, TierEdit};
use crate::remote::RemoteTier;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use storage::ClusterConfig;

/// The cluster configuration document holding the tiers.
pub const DOCUMENT: &str = "tiers";

/// A tier with its client.
#[derive(Clone)]
pub struct Tier {
    pub config: TierConfig,
    pub remote: Arc<dyn RemoteTier>,
}

/// Every tier by name.
pub struct Registry {
    config: Arc<dyn ClusterConfig>,
    tiers: RwLock<BTreeMap<String, Tier>>,
    /// One change at a time (read, change, write back).
    changing: tokio::sync::Mutex<()>,
}

/// Builds the client of a tier's kind.
pub fn client(config: &TierConfig) -> Result<Arc<dyn RemoteTier>, String> {
    Ok(match config.kind() {
        Kind::S3 => Arc::new(crate::s3::S3Tier::new(config)?),
        Kind::Azure => Arc::new(crate::azure::AzureTier::new(config)?),
        Kind::Gcs => Arc::new(crate::gcs::GcsTier::new(config)?),
    })
}

impl Registry {
    /// Loads the tiers stored in `config`. A tier whose client cannot be built (a secret's
    /// environment variable unset) is logged and left out until it is fixed with `edit`.
    pub async fn load(config: Arc<dyn ClusterConfig>) -> Result<Self, String> {
        let registry = Self {
            config,
            tiers: RwLock::new(BTreeMap::new()),
            changing: tokio::sync::Mutex::new(()),
        };
        let stored = registry.stored().await?;
        let mut tiers = BTreeMap::new();
        for t in stored {
            match client(&t) {
                Ok(remote) => {
                    tiers.insert(t.name.clone(), Tier { config: t, remote });
                }
                Err(e) => tracing::error!(tier = %t.name, error = %e, "tier unusable"),
            }
        }
        *registry.tiers.write().expect("lock") = tiers;
        Ok(registry)
    }

    async fn stored(&self) -> Result<Vec<TierConfig>, String> {
        match self.config.get(DOCUMENT).await.map_err(|e| e.to_string())? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("the stored tier registry is unreadable: {e}")),
            None => Ok(Vec::new()),
        }
    }

    async fn save(&self, tiers: &[TierConfig]) -> Result<(), String> {
        let bytes = serde_json::to_vec(tiers).expect("tiers serialize");
        self.config
            .set(DOCUMENT, Some(bytes))
            .await
            .map_err(|e| format!("could not store the tier registry: {e}"))
    }

    pub fn get(&self, name: &str) -> Option<Tier> {
        self.tiers.read().expect("lock").get(name).cloned()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tiers.read().expect("lock").contains_key(name)
    }

    /// Every tier's settings, by name.
    pub fn list(&self) -> Vec<TierConfig> {
        self.tiers
            .read()
            .expect("lock")
            .values()
            .map(|t| t.config.clone())
            .collect()
    }

    /// Adds a tier, or with `replace` replaces one of the same name (the TOML config at
    /// start-up). Refuses invalid settings and a name already taken.
    pub async fn add(&self, tier: TierConfig, replace: bool) -> Result<(), String> {
        tier.validate()?;
        let remote = client(&tier)?;
        let _one = self.changing.lock().await;
        let mut stored = self.stored().await?;
        match stored.iter_mut().find(|t| t.name == tier.name) {
            Some(_) if !replace => return Err(format!("tier {} exists already", tier.name)),
            Some(t) => {
                // Versions on the tier name objects at its location: only credentials and
                // the class new objects get may change under the same name.
                let place = |c: &TierConfig| {
                    (
                        c.kind(),
                        c.endpoint.clone(),
                        c.bucket.clone(),
                        c.prefix.clone(),
                        c.account.clone(),
                    )
                };
                if place(t) != place(&tier) {
                    return Err(format!(
                        "tier {} is registered with another kind, endpoint, bucket, prefix or account; a tier cannot move (drain it, remove it and add it anew)",
                        tier.name
                    ));
                }
                *t = tier.clone()
            }
            None => stored.push(tier.clone()),
        }
        self.save(&stored).await?;
        self.tiers.write().expect("lock").insert(
            tier.name.clone(),
            Tier {
                config: tier,
                remote,
            },
        );
        Ok(())
    }

    /// Changes a tier's credentials or class.
    pub async fn edit(&self, name: &str, edit: &TierEdit) -> Result<TierConfig, String> {
        self.change(name, |t| edit.apply(t)).await
    }

    /// Marks a tier as drained: it takes no new transitions.
    pub async fn set_draining(&self, name: &str) -> Result<(), String> {
        self.change(name, |t| TierConfig {
            draining: true,
            ..t.clone()
        })
        .await
        .map(drop)
    }

    /// Replaces tier `name` with `change(it)`, checked and with a new client, stored first.
    async fn change(
        &self,
        name: &str,
        change: impl FnOnce(&TierConfig) -> TierConfig,
    ) -> Result<TierConfig, String> {
        let _one = self.changing.lock().await;
        let mut stored = self.stored().await?;
        let slot = stored
            .iter_mut()
            .find(|t| t.name == name)
            .ok_or_else(|| format!("no tier {name}"))?;
        let changed = change(slot);
        changed.validate()?;
        let remote = client(&changed)?;
        *slot = changed.clone();
        self.save(&stored).await?;
        self.tiers.write().expect("lock").insert(
            name.to_owned(),
            Tier {
                config: changed.clone(),
                remote,
            },
        );
        Ok(changed)
    }

    /// Removes a tier (the caller checked that nothing lives on it).
    pub async fn remove(&self, name: &str) -> Result<(), String> {
        let _one = self.changing.lock().await;
        let mut stored = self.stored().await?;
        let before = stored.len();
        stored.retain(|t| t.name != name);
        if stored.len() == before {
            return Err(format!("no tier {name}"));
        }
        self.save(&stored).await?;
        self.tiers.write().expect("lock").remove(name);
        Ok(())
    }
}
