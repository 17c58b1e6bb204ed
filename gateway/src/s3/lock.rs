//! Object lock: the bucket's lock configuration and default retention, retention and legal
//! hold on versions, and the rules for changing them. The storage layer refuses deletes and
//! overwrites of locked versions on every path; this module decides what a request sets.

use super::versioning::{versioning, which};
use super::{checksum, custom_error, Gateway};
use crate::s3::error::s3_err;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result};
use serde::{Deserialize, Serialize};
use storage::meta::{now_ns, BucketRecord, ObjectVersion, Retention};
use storage::{StorageError, Versioning};

/// Bucket config entry present when object lock is enabled (JSON [`LockConfig`]).
pub const OBJECT_LOCK: &str = "object-lock";

const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// A bucket's object-lock configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LockConfig {
    /// Default retention: mode and period for versions written without their own.
    pub default_mode: Option<String>,
    pub days: Option<i32>,
    pub years: Option<i32>,
}

impl LockConfig {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("serializes")
    }

    /// The retention a new version gets by default, counted from `now`.
    fn default_retention(&self, now: i64) -> Option<Retention> {
        let days = i64::from(self.days.unwrap_or(0)) + 365 * i64::from(self.years.unwrap_or(0));
        Some(Retention {
            mode: self.default_mode.clone()?,
            retain_until_ns: now + days * NS_PER_DAY,
        })
    }
}

/// The bucket's lock configuration, if object lock is enabled on it.
pub fn lock_config(bucket: &BucketRecord) -> Option<LockConfig> {
    let raw = bucket.config.get(OBJECT_LOCK)?;
    Some(serde_json::from_slice(raw).unwrap_or_default())
}

pub fn lock_enabled(bucket: &BucketRecord) -> bool {
    bucket.config.contains_key(OBJECT_LOCK)
}

fn missing_lock_configuration() -> S3Error {
    s3_error!(
        InvalidRequest,
        "Bucket is missing Object Lock Configuration"
    )
}

fn mode_name(mode: &ObjectLockRetentionMode) -> S3Result<String> {
    match mode.as_str() {
        m @ ("GOVERNANCE" | "COMPLIANCE") => Ok(m.to_owned()),
        _ => Err(s3_error!(MalformedXML, "Unknown object lock mode")),
    }
}

fn nanos(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp_nanos() as i64
}

/// The lock a new version gets: from the request's lock headers, else the bucket's default
/// retention. AWS demands an integrity header (Content-MD5 or a checksum) with lock headers
/// on a request that carries a body; `headers` are those of such a request.
pub fn new_version_lock(
    bucket: &BucketRecord,
    mode: Option<&ObjectLockMode>,
    until: Option<&Timestamp>,
    legal_hold: Option<&ObjectLockLegalHoldStatus>,
    headers: Option<&http::HeaderMap>,
) -> S3Result<(Option<Retention>, Option<bool>)> {
    let asked = mode.is_some() || until.is_some() || legal_hold.is_some();
    let config = lock_config(bucket);
    if asked && config.is_none() {
        return Err(missing_lock_configuration());
    }
    if asked && headers.is_some_and(|h| !checksum::has_integrity_header(h)) {
        return Err(s3_error!(
            InvalidRequest,
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters"
        ));
    }
    let now = now_ns();
    let retention = match (mode, until) {
        (Some(m), Some(t)) => {
            let mode = match m.as_str() {
                m @ ("GOVERNANCE" | "COMPLIANCE") => m.to_owned(),
                _ => return Err(s3_error!(InvalidArgument, "Unknown wormMode directive.")),
            };
            if nanos(t) <= now {
                return Err(s3_error!(
                    InvalidArgument,
                    "The retain until date must be in the future!"
                ));
            }
            Some(Retention {
                mode,
                retain_until_ns: nanos(t),
            })
        }
        (None, None) => config.and_then(|c| c.default_retention(now)),
        _ => {
            return Err(s3_error!(
            InvalidArgument,
            "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
        ))
        }
    };
    let hold = legal_hold.map(|h| h.as_str() == ObjectLockLegalHoldStatus::ON);
    Ok((retention, hold))
}

/// The answer for a version that has no retention, or never had a legal hold status.
fn no_lock_configuration() -> S3Error {
    custom_error(
        "NoSuchObjectLockConfiguration",
        http::StatusCode::NOT_FOUND,
        "The specified object does not have a ObjectLock configuration",
    )
}

/// Whether a retention change is allowed: a COMPLIANCE date is never shortened nor its mode
/// changed; a GOVERNANCE one only with the bypass header.
fn check_retention_change(
    current: Option<&Retention>,
    new: Option<&Retention>,
    now: i64,
    bypass: bool,
) -> storage::Result<()> {
    let Some(cur) = current.filter(|c| c.retain_until_ns > now) else {
        return Ok(());
    };
    let weakens = match new {
        None => true,
        Some(n) => {
            // Any change of mode counts: even GOVERNANCE to the stricter COMPLIANCE needs
            // the bypass header, as AWS answers it (AccessDenied without).
            n.retain_until_ns < cur.retain_until_ns || n.mode != cur.mode
        }
    };
    match (weakens, cur.mode.as_str()) {
        (false, _) => Ok(()),
        (true, "GOVERNANCE") if bypass => Ok(()),
        (true, mode) => Err(StorageError::ObjectLocked(format!(
            "the object version's {mode} retention cannot be shortened or weakened"
        ))),
    }
}

impl Gateway {
    async fn lock_bucket(&self, name: &str) -> S3Result<BucketRecord> {
        let bucket = self.store.bucket(name).await.map_err(s3_err)?;
        if !lock_enabled(&bucket) {
            return Err(missing_lock_configuration());
        }
        Ok(bucket)
    }

    /// A version in a bucket with object lock.
    async fn lock_view(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<storage::ObjectView> {
        self.lock_bucket(bucket).await?;
        self.version_view(bucket, key, version_id).await
    }

    /// Changes the lock state of a version in a bucket with object lock.
    async fn update_lock(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        change: impl Fn(&mut ObjectVersion) -> storage::Result<()>,
    ) -> S3Result<()> {
        self.lock_bucket(bucket).await?;
        self.store
            .set_for(bucket, key)
            .update_version(bucket, key, which(version_id)?, |v| {
                change(v.object.as_mut().expect("object version"))
            })
            .await
            .map_err(s3_err)?;
        Ok(())
    }

    pub(super) async fn put_object_lock_configuration_op(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
        checksum::require_integrity(&req.headers)?;
        let input = req.input;
        let bucket = self.store.bucket(&input.bucket).await.map_err(s3_err)?;
        if !lock_enabled(&bucket) && versioning(&bucket) != Versioning::Enabled {
            return Err(s3_error!(
                InvalidBucketState,
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
            ));
        }
        let conf = input.object_lock_configuration.unwrap_or_default();
        if conf
            .object_lock_enabled
            .as_ref()
            .is_none_or(|e| e.as_str() != ObjectLockEnabled::ENABLED)
        {
            return Err(s3_error!(MalformedXML, "ObjectLockEnabled must be Enabled"));
        }
        let mut config = LockConfig::default();
        if let Some(d) = conf.rule.and_then(|r| r.default_retention) {
            let mode = d
                .mode
                .as_ref()
                .ok_or_else(|| s3_error!(MalformedXML, "DefaultRetention needs a Mode"))
                .and_then(mode_name)?;
            match (d.days, d.years) {
                (Some(n), None) | (None, Some(n)) if n > 0 => {}
                (Some(_), Some(_)) | (None, None) => {
                    return Err(s3_error!(
                        MalformedXML,
                        "DefaultRetention takes either Days or Years"
                    ))
                }
                _ => {
                    return Err(custom_error(
                        "InvalidRetentionPeriod",
                        http::StatusCode::BAD_REQUEST,
                        "Default retention period must be a positive integer value.",
                    ))
                }
            }
            config = LockConfig {
                default_mode: Some(mode),
                days: d.days,
                years: d.years,
            };
        }
        self.store
            .set_bucket_config(&input.bucket, OBJECT_LOCK, Some(config.encode()))
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
    }

    pub(super) async fn get_object_lock_configuration_op(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        let bucket = self.store.bucket(&req.input.bucket).await.map_err(s3_err)?;
        let Some(config) = lock_config(&bucket) else {
            return Err(custom_error(
                "ObjectLockConfigurationNotFoundError",
                http::StatusCode::NOT_FOUND,
                "Object Lock configuration does not exist for this bucket",
            ));
        };
        let rule = config.default_mode.map(|mode| ObjectLockRule {
            default_retention: Some(DefaultRetention {
                days: config.days,
                mode: Some(ObjectLockRetentionMode::from(mode)),
                years: config.years,
            }),
        });
        Ok(S3Response::new(GetObjectLockConfigurationOutput {
            object_lock_configuration: Some(ObjectLockConfiguration {
                object_lock_enabled: Some(ObjectLockEnabled::from_static(
                    ObjectLockEnabled::ENABLED,
                )),
                rule,
            }),
        }))
    }

    pub(super) async fn put_object_retention_op(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> S3Result<S3Response<PutObjectRetentionOutput>> {
        checksum::require_integrity(&req.headers)?;
        let input = req.input;
        let now = now_ns();
        let new = match input
            .retention
            .filter(|r| r.mode.is_some() || r.retain_until_date.is_some())
        {
            None => None,
            Some(ObjectLockRetention {
                mode: Some(mode),
                retain_until_date: Some(date),
            }) => {
                let until = nanos(&date);
                if until <= now {
                    return Err(s3_error!(
                        InvalidArgument,
                        "The retain until date must be in the future!"
                    ));
                }
                Some(Retention {
                    mode: mode_name(&mode)?,
                    retain_until_ns: until,
                })
            }
            Some(_) => {
                return Err(s3_error!(
                    MalformedXML,
                    "Retention needs both Mode and RetainUntilDate"
                ))
            }
        };
        let bypass = input.bypass_governance_retention.unwrap_or(false);
        self.update_lock(
            &input.bucket,
            &input.key,
            input.version_id.as_deref(),
            |obj| {
                check_retention_change(obj.retention.as_ref(), new.as_ref(), now, bypass)?;
                obj.retention = new.clone();
                Ok(())
            },
        )
        .await?;
        Ok(S3Response::new(PutObjectRetentionOutput::default()))
    }

    pub(super) async fn get_object_retention_op(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> S3Result<S3Response<GetObjectRetentionOutput>> {
        let input = req.input;
        let view = self
            .lock_view(&input.bucket, &input.key, input.version_id.as_deref())
            .await?;
        let Some(r) = view.object().retention.clone() else {
            return Err(no_lock_configuration());
        };
        Ok(S3Response::new(GetObjectRetentionOutput {
            retention: Some(ObjectLockRetention {
                mode: Some(ObjectLockRetentionMode::from(r.mode)),
                retain_until_date: Some(super::timestamp(r.retain_until_ns)),
            }),
        }))
    }

    pub(super) async fn put_object_legal_hold_op(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        checksum::require_integrity(&req.headers)?;
        let input = req.input;
        let on = match input.legal_hold.and_then(|h| h.status) {
            Some(s) if s.as_str() == ObjectLockLegalHoldStatus::ON => true,
            Some(s) if s.as_str() == ObjectLockLegalHoldStatus::OFF => false,
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "LegalHold Status must be ON or OFF"
                ))
            }
        };
        self.update_lock(
            &input.bucket,
            &input.key,
            input.version_id.as_deref(),
            |obj| {
                obj.legal_hold = on;
                obj.legal_hold_set = true;
                Ok(())
            },
        )
        .await?;
        Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
    }

    pub(super) async fn get_object_legal_hold_op(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
        let input = req.input;
        let view = self
            .lock_view(&input.bucket, &input.key, input.version_id.as_deref())
            .await?;
        let status = match view.object() {
            o if o.legal_hold => ObjectLockLegalHoldStatus::ON,
            o if o.legal_hold_set => ObjectLockLegalHoldStatus::OFF,
            _ => return Err(no_lock_configuration()),
        };
        Ok(S3Response::new(GetObjectLegalHoldOutput {
            legal_hold: Some(ObjectLockLegalHold {
                status: Some(ObjectLockLegalHoldStatus::from_static(status)),
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(mode: &str, until: i64) -> Retention {
        Retention {
            mode: mode.into(),
            retain_until_ns: until,
        }
    }

    #[test]
    fn compliance_is_only_ever_extended() {
        let cur = r("COMPLIANCE", 100);
        assert!(check_retention_change(Some(&cur), Some(&r("COMPLIANCE", 200)), 10, false).is_ok());
        assert!(check_retention_change(Some(&cur), Some(&r("COMPLIANCE", 50)), 10, true).is_err());
        assert!(check_retention_change(Some(&cur), Some(&r("GOVERNANCE", 200)), 10, true).is_err());
        assert!(check_retention_change(Some(&cur), None, 10, true).is_err());
        // Expired retention no longer protects anything.
        assert!(check_retention_change(Some(&cur), None, 100, false).is_ok());
    }

    #[test]
    fn governance_yields_to_bypass() {
        let cur = r("GOVERNANCE", 100);
        assert!(check_retention_change(Some(&cur), Some(&r("GOVERNANCE", 50)), 10, false).is_err());
        assert!(check_retention_change(Some(&cur), Some(&r("GOVERNANCE", 50)), 10, true).is_ok());
        assert!(
            check_retention_change(Some(&cur), Some(&r("COMPLIANCE", 100)), 10, false).is_err()
        );
        assert!(check_retention_change(Some(&cur), Some(&r("COMPLIANCE", 100)), 10, true).is_ok());
        assert!(check_retention_change(Some(&cur), Some(&r("GOVERNANCE", 150)), 10, false).is_ok());
        assert!(check_retention_change(Some(&cur), None, 10, true).is_ok());
    }

    #[test]
    fn default_retention_counts_days_or_years() {
        let c = LockConfig {
            default_mode: Some("GOVERNANCE".into()),
            days: Some(2),
            years: None,
        };
        assert_eq!(
            c.default_retention(0).unwrap().retain_until_ns,
            2 * NS_PER_DAY
        );
        assert!(LockConfig::default().default_retention(0).is_none());
    }
}
