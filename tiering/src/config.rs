//! A tier's settings: what kind of remote store it is, where, with which credentials and
//! storage class. Secrets are given as-is or as `env:NAME` (read from the environment each
//! time a client is built) and are only ever shown masked.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of remote object store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Any S3 endpoint (AWS, MinIO, another Strata, moto).
    S3,
    /// Google Cloud Storage (JSON API).
    Gcs,
    /// Azure Blob Storage (block blobs).
    Azure,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::S3 => "s3",
            Kind::Gcs => "gcs",
            Kind::Azure => "azure",
        })
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "s3" => Ok(Kind::S3),
            "gcs" => Ok(Kind::Gcs),
            "azure" => Ok(Kind::Azure),
            other => Err(format!("unknown tier kind '{other}' (s3, gcs or azure)")),
        }
    }
}

/// One tier as the registry stores it. Its `Debug` form masks the secrets.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// The storage class clients write in lifecycle rules and see in `x-amz-storage-class`.
    pub name: String,
    pub kind: Option<Kind>,
    /// S3: the endpoint URL (AWS by region when absent); GCS: the JSON API base URL
    /// (`https://storage.googleapis.com` when absent); Azure: the blob service URL
    /// (`https://ACCOUNT.blob.core.windows.net` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The remote bucket (Azure: container).
    pub bucket: String,
    /// Prepended to every remote key, e.g. `strata/`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// S3 region (default `us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// S3 path-style addressing (`ENDPOINT/BUCKET/KEY`), for endpoints without virtual hosts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub path_style: bool,
    /// The remote storage class (S3 `STANDARD_IA`, `GLACIER_IR`, …; GCS `NEARLINE`,
    /// `COLDLINE`, `ARCHIVE`) or access tier (Azure `Cool`, `Cold`, `Archive`) written with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// S3 access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// S3 secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// Azure storage account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Azure account key (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Azure SAS token (`sv=…&sig=…`), instead of an account key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sas: Option<String>,
    /// GCS: a service-account JSON key file (none: anonymous, for emulators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// Set by `tier drain`: the tier takes no new transitions, so a drain is not undone by the
    /// rules that still name it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
}

impl fmt::Debug for TierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |s: &Option<String>| s.as_deref().map(mask);
        f.debug_struct("TierConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("storage_class", &self.storage_class)
            .field("access_key", &self.access_key)
            .field("secret_key", &secret(&self.secret_key))
            .field("account", &self.account)
            .field("key", &secret(&self.key))
            .field("sas", &secret(&self.sas))
            .field("credentials", &self.credentials)
            .field("draining", &self.draining)
            .finish()
    }
}

/// S3's own storage classes (AWS's `StorageClass` enum): a tier cannot take one as its name.
pub const BUILT_IN_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_IR",
    "SNOW",
    "EXPRESS_ONEZONE",
];

/// Resolves a secret: `env:NAME` reads the environment variable `NAME`.
pub fn resolve_secret(value: &str) -> Result<String, String> {
    match value.strip_prefix("env:") {
        Some(var) => std::env::var(var)
            .map_err(|_| format!("the environment variable {var} named for a secret is not set")),
        None => Ok(value.to_owned()),
    }
}

/// A secret as shown to operators: environment references as they are, values masked.
pub fn mask(value: &str) -> String {
    if value.starts_with("env:") {
        value.to_owned()
    } else {
        "********".into()
    }
}

impl TierConfig {
    pub fn kind(&self) -> Kind {
        self.kind.unwrap_or(Kind::S3)
    }

    /// The same settings with every secret masked, for listings and logs.
    pub fn masked(&self) -> TierConfig {
        TierConfig {
            secret_key: self.secret_key.as_deref().map(mask),
            key: self.key.as_deref().map(mask),
            sas: self.sas.as_deref().map(mask),
            ..self.clone()
        }
    }

    /// Checks the settings a tier of its kind needs, before any client is built.
    pub fn validate(&self) -> Result<(), String> {
        let n = &self.name;
        let valid_name = !n.is_empty()
            && n.len() <= 64
            && n.starts_with(|c: char| c.is_ascii_uppercase())
            && n.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid_name {
            return Err(format!(
                "tier name '{n}': 1-64 characters, upper-case letters, digits, '_' and '-', starting with a letter (it is the storage class clients see)"
            ));
        }
        if BUILT_IN_CLASSES.contains(&n.as_str()) {
            return Err(format!(
                "tier name '{n}' is one of S3's own storage classes"
            ));
        }
        if self.bucket.is_empty() {
            return Err("a tier needs a bucket (Azure: a container)".into());
        }
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(format!("endpoint '{e}' must be an http:// or https:// URL"));
            }
        }
        let classes: &[&str] = match self.kind() {
            Kind::S3 => &[
                "STANDARD",
                "STANDARD_IA",
                "ONEZONE_IA",
                "INTELLIGENT_TIERING",
                "GLACIER_IR",
                "GLACIER",
                "DEEP_ARCHIVE",
                "REDUCED_REDUNDANCY",
            ],
            Kind::Gcs => &["STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"],
            Kind::Azure => &["Hot", "Cool", "Cold", "Archive"],
        };
        if let Some(c) = &self.storage_class {
            if !classes.contains(&c.as_str()) {
                return Err(format!(
                    "storage class '{c}' is not one a {} tier writes with ({})",
                    self.kind(),
                    classes.join(", ")
                ));
            }
        }
        match self.kind() {
            Kind::S3 => {
                if self.access_key.is_none() || self.secret_key.is_none() {
                    return Err("an s3 tier needs --access-key and --secret-key".into());
                }
            }
            Kind::Azure => {
                if self.key.is_some() == self.sas.is_some() {
                    return Err("an azure tier needs either --key or --sas".into());
                }
                if self.account.is_none() {
                    return Err("an azure tier needs --account".into());
                }
            }
            Kind::Gcs => {}
        }
        Ok(())
    }
}

/// A change `strata admin tier edit` makes: new credentials (rotation) or class.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierEdit {
    #[serde(default)]
    pub access_key: Option<String>,
    #[serde(default)]
    pub secret_key: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub sas: Option<String>,
    #[serde(default)]
    pub credentials: Option<String>,
    #[serde(default)]
    pub storage_class: Option<String>,
}

impl TierEdit {
    /// The tier with this edit applied (an account key replaces a SAS and back).
    pub fn apply(&self, tier: &TierConfig) -> TierConfig {
        let mut t = tier.clone();
        if let Some(v) = &self.access_key {
            t.access_key = Some(v.clone());
        }
        if let Some(v) = &self.secret_key {
            t.secret_key = Some(v.clone());
        }
        if let Some(v) = &self.key {
            t.key = Some(v.clone());
            t.sas = None;
        }
        if let Some(v) = &self.sas {
            t.sas = Some(v.clone());
            t.key = None;
        }
        if let Some(v) = &self.credentials {
            t.credentials = Some(v.clone());
        }
        if let Some(v) = &self.storage_class {
            t.storage_class = Some(v.clone());
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> TierConfig {
        TierConfig {
            name: "COLD".into(),
            kind: Some(Kind::S3),
            bucket: "archive".into(),
            access_key: Some("AK".into()),
            secret_key: Some("very-secret".into()),
            ..Default::default()
        }
    }

    #[test]
    fn names_are_storage_classes_of_our_own() {
        assert!(s3().validate().is_ok());
        for bad in ["cold", "", "GLACIER", "STANDARD", "1COLD", "CO LD"] {
            let t = TierConfig {
                name: bad.into(),
                ..s3()
            };
            assert!(t.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn each_kind_needs_its_credentials_and_classes() {
        let t = TierConfig {
            secret_key: None,
            ..s3()
        };
        assert!(t.validate().unwrap_err().contains("--secret-key"));
        let azure = TierConfig {
            kind: Some(Kind::Azure),
            account: Some("devstoreaccount1".into()),
            key: Some("k".into()),
            storage_class: Some("Cool".into()),
            ..s3()
        };
        assert!(azure.validate().is_ok());
        let both = TierConfig {
            sas: Some("sv=1".into()),
            ..azure.clone()
        };
        assert!(both.validate().is_err());
        let wrong_class = TierConfig {
            storage_class: Some("NEARLINE".into()),
            ..azure
        };
        assert!(wrong_class.validate().unwrap_err().contains("Cool"));
    }

    #[test]
    fn secrets_are_masked_but_environment_references_shown() {
        let t = TierConfig {
            secret_key: Some("env:COLD_SECRET".into()),
            ..s3()
        };
        assert_eq!(t.masked().secret_key.as_deref(), Some("env:COLD_SECRET"));
        let m = s3().masked();
        assert_eq!(m.secret_key.as_deref(), Some("********"));
        assert!(!format!("{m:?}").contains("very-secret"));
        std::env::set_var("STRATA_TEST_TIER_SECRET", "s3cr3t");
        assert_eq!(
            resolve_secret("env:STRATA_TEST_TIER_SECRET").unwrap(),
            "s3cr3t"
        );
        assert!(resolve_secret("env:STRATA_TEST_UNSET_VAR").is_err());
    }

    #[test]
    fn an_edit_rotates_credentials_and_switches_azure_auth() {
        let edit = TierEdit {
            secret_key: Some("new".into()),
            ..Default::default()
        };
        assert_eq!(edit.apply(&s3()).secret_key.as_deref(), Some("new"));
        let azure = TierConfig {
            key: Some("k".into()),
            ..s3()
        };
        let edit = TierEdit {
            sas: Some("sv=2".into()),
            ..Default::default()
        };
        let t = edit.apply(&azure);
        assert_eq!((t.key, t.sas.as_deref()), (None, Some("sv=2")));
    }
}
