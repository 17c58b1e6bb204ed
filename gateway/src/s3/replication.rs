//! Put/Get/DeleteBucketReplication: S3's V1 and V2 rule schema mapped onto the `replicator`
//! crate's model (shape errors here, AWS's rules in `replicator::config`), stored as a
//! bucket configuration; and the replica headers a replication target honours.

use super::Gateway;
use crate::s3::error::s3_err;
use replicator::{Configuration, Filter, Rule, REPLICA_MTIME_HEADER, REPLICA_VERSION_HEADER};
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use storage::meta::BucketRecord;
use storage::{ReplicaOf, Versioning};

/// Bucket config entry holding the configuration (JSON of `replicator::Configuration`).
pub const REPLICATION: &str = replicator::CONFIG_KEY;

fn malformed(why: &str) -> S3Error {
    s3_error!(
        MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema: {why}"
    )
}

fn invalid_request(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, message.into())
}

fn enabled(status: &str, what: &str) -> S3Result<bool> {
    match status {
        "Enabled" => Ok(true),
        "Disabled" => Ok(false),
        _ => Err(malformed(&format!("{what} must be Enabled or Disabled"))),
    }
}

fn tags(set: Option<Vec<Tag>>) -> S3Result<Vec<(String, String)>> {
    set.unwrap_or_default()
        .into_iter()
        .map(|t| match (t.key, t.value) {
            (Some(k), Some(v)) => Ok((k, v)),
            _ => Err(malformed("a Tag needs a Key and a Value")),
        })
        .collect()
}

fn filter_of(f: ReplicationRuleFilter) -> S3Result<Filter> {
    let given = usize::from(f.prefix.is_some())
        + usize::from(f.tag.is_some())
        + usize::from(f.and.is_some());
    if given > 1 {
        return Err(malformed(
            "a Filter holds exactly one of Prefix, Tag and And",
        ));
    }
    Ok(match (f.prefix, f.tag, f.and) {
        (Some(prefix), _, _) => Filter {
            prefix,
            tags: vec![],
        },
        (_, Some(tag), _) => Filter {
            prefix: String::new(),
            tags: tags(Some(vec![tag]))?,
        },
        (_, _, Some(and)) => Filter {
            prefix: and.prefix.unwrap_or_default(),
            tags: tags(and.tags)?,
        },
        _ => Filter::default(),
    })
}

fn rule_of(r: ReplicationRule) -> S3Result<Rule> {
    let enabled_rule = enabled(r.status.as_str(), "a rule's Status")?;
    let id = match r.id.filter(|id| !id.is_empty()) {
        Some(id) => id,
        // AWS gives a rule without an ID a generated one.
        None => uuid::Uuid::new_v4().simple().to_string(),
    };
    let delete_markers = match &r.delete_marker_replication {
        Some(d) => match d.status.as_ref() {
            Some(s) => enabled(s.as_str(), "DeleteMarkerReplication's Status")?,
            None => false,
        },
        None => false,
    };
    let existing_objects = match &r.existing_object_replication {
        Some(e) => enabled(e.status.as_str(), "ExistingObjectReplication's Status")?,
        None => false,
    };
    let (filter, priority) = match (r.filter, r.prefix) {
        (Some(_), Some(_)) => return Err(malformed("a rule takes Prefix or Filter, not both")),
        (None, None) => return Err(malformed("a rule needs a Filter (or the legacy Prefix)")),
        (None, Some(prefix)) => {
            if r.delete_marker_replication.is_some() {
                return Err(invalid_request(
                    "DeleteMarkerReplication cannot be used for this version of Cross Region Replication configuration schema. Please refer to S3 Developer Guide for more information.",
                ));
            }
            (
                Filter {
                    prefix,
                    tags: vec![],
                },
                None,
            )
        }
        (Some(f), None) => {
            let Some(priority) = r.priority else {
                return Err(invalid_request(
                    "Priority must be specified for this version of Cross Region Replication configuration schema. Please refer to S3 Developer Guide for more information.",
                ));
            };
            if r.delete_marker_replication.is_none() {
                return Err(invalid_request(
                    "DeleteMarkerReplication must be specified for this version of Cross Region Replication configuration schema. Please refer to S3 Developer Guide for more information.",
                ));
            }
            (filter_of(f)?, Some(priority))
        }
    };
    Ok(Rule {
        id,
        priority,
        enabled: enabled_rule,
        filter,
        destination: r.destination.bucket,
        storage_class: r.destination.storage_class.map(|c| c.as_str().to_owned()),
        delete_markers: delete_markers || priority.is_none(),
        existing_objects,
    })
}

fn to_dto(c: &Configuration) -> ReplicationConfiguration {
    let rules = c
        .rules
        .iter()
        .map(|r| {
            let status = |on: bool| if on { "Enabled" } else { "Disabled" };
            let (filter, prefix) = if r.is_v1() {
                (None, Some(r.filter.prefix.clone()))
            } else {
                let tag = |(k, v): &(String, String)| Tag {
                    key: Some(k.clone()),
                    value: Some(v.clone()),
                };
                let f = match (r.filter.prefix.is_empty(), r.filter.tags.as_slice()) {
                    (true, []) => ReplicationRuleFilter::default(),
                    (false, []) => ReplicationRuleFilter {
                        prefix: Some(r.filter.prefix.clone()),
                        ..Default::default()
                    },
                    (true, [one]) => ReplicationRuleFilter {
                        tag: Some(tag(one)),
                        ..Default::default()
                    },
                    (_, many) => ReplicationRuleFilter {
                        and: Some(ReplicationRuleAndOperator {
                            prefix: (!r.filter.prefix.is_empty()).then(|| r.filter.prefix.clone()),
                            tags: Some(many.iter().map(tag).collect()),
                        }),
                        ..Default::default()
                    },
                };
                (Some(f), None)
            };
            ReplicationRule {
                id: Some(r.id.clone()),
                priority: r.priority,
                status: ReplicationRuleStatus::from(status(r.enabled).to_owned()),
                filter,
                prefix,
                destination: Destination {
                    bucket: r.destination.clone(),
                    storage_class: r.storage_class.clone().map(StorageClass::from),
                    ..Default::default()
                },
                delete_marker_replication: (!r.is_v1()).then(|| DeleteMarkerReplication {
                    status: Some(DeleteMarkerReplicationStatus::from(
                        status(r.delete_markers).to_owned(),
                    )),
                }),
                existing_object_replication: r.existing_objects.then(|| {
                    ExistingObjectReplication {
                        status: ExistingObjectReplicationStatus::from("Enabled".to_owned()),
                    }
                }),
                source_selection_criteria: None,
            }
        })
        .collect();
    ReplicationConfiguration {
        role: c.role.clone(),
        rules,
    }
}

/// A bucket's replication configuration, if it has one.
pub fn config_of(bucket: &BucketRecord) -> Option<Configuration> {
    replicator::config_of(bucket)
}

/// The replica identity a request claims (a replication target's inbound write). Only a
/// signed request with both headers among its signed headers may claim one: an anonymous
/// request, or one whose headers were added outside the signature, is refused.
pub fn replica_of(
    req_headers: &http::HeaderMap,
    uri: &http::Uri,
    signed: bool,
) -> S3Result<Option<ReplicaOf>> {
    let version = req_headers.get(REPLICA_VERSION_HEADER);
    let mtime = req_headers.get(REPLICA_MTIME_HEADER);
    if version.is_none() && mtime.is_none() {
        return Ok(None);
    }
    let denied = || {
        s3_error!(
            AccessDenied,
            "Replica headers are accepted only from a replication identity, signed"
        )
    };
    if !signed {
        return Err(denied());
    }
    let signed_headers = req_headers
        .get(http::header::AUTHORIZATION)
        .and_then(|a| a.to_str().ok())
        .and_then(|a| a.split("SignedHeaders=").nth(1))
        .map(|s| s.split(',').next().unwrap_or_default().to_owned())
        .or_else(|| {
            form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                .find(|(k, _)| k == "X-Amz-SignedHeaders")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    let covered = |name: &str| signed_headers.split(';').any(|h| h.trim() == name);
    if !covered(REPLICA_VERSION_HEADER) || !covered(REPLICA_MTIME_HEADER) {
        return Err(denied());
    }
    let text = |v: Option<&http::HeaderValue>| {
        v.and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let version_id = match text(version).as_str() {
        "null" => None,
        v => Some(
            uuid::Uuid::try_parse(v)
                .map_err(|_| s3_error!(InvalidArgument, "Invalid {REPLICA_VERSION_HEADER}"))?,
        ),
    };
    let mod_time_ns = text(mtime)
        .parse::<i64>()
        .map_err(|_| s3_error!(InvalidArgument, "Invalid {REPLICA_MTIME_HEADER}"))?;
    Ok(Some(ReplicaOf {
        version_id,
        mod_time_ns,
    }))
}

impl Gateway {
    pub(super) async fn put_bucket_replication_op(
        &self,
        req: S3Request<PutBucketReplicationInput>,
    ) -> S3Result<S3Response<PutBucketReplicationOutput>> {
        let input = req.input;
        let bucket = self.store.bucket(&input.bucket).await.map_err(s3_err)?;
        let dto = input.replication_configuration;
        let config = Configuration {
            role: dto.role,
            rules: dto
                .rules
                .into_iter()
                .map(rule_of)
                .collect::<S3Result<_>>()?,
        };
        if let Err(e) = config.validate() {
            return Err(S3Error::with_message(
                S3ErrorCode::from_bytes(e.code.as_bytes())
                    .unwrap_or(S3ErrorCode::Custom(e.code.into())),
                e.message,
            ));
        }
        if bucket.versioning() != Versioning::Enabled {
            return Err(invalid_request(
                "Versioning must be 'Enabled' on the bucket to apply a replication configuration",
            ));
        }
        for arn in config.destinations() {
            match self.replicator.targets().get(arn) {
                None => {
                    return Err(invalid_request(format!(
                        "Destination bucket {arn} is not a registered replication target (strata admin replicate add-target)"
                    )))
                }
                Some(t) if t.config.bucket != input.bucket => {
                    return Err(invalid_request(format!(
                        "The replication target {arn} was registered for bucket {}, not {}",
                        t.config.bucket, input.bucket
                    )))
                }
                Some(_) => {}
            }
        }
        let bytes = serde_json::to_vec(&config).expect("configurations serialize");
        self.store
            .set_bucket_config(&input.bucket, REPLICATION, Some(bytes))
            .await
            .map_err(s3_err)?;
        self.replicator.configured(&input.bucket, Some(config));
        Ok(S3Response::new(PutBucketReplicationOutput {}))
    }

    pub(super) async fn get_bucket_replication_op(
        &self,
        req: S3Request<GetBucketReplicationInput>,
    ) -> S3Result<S3Response<GetBucketReplicationOutput>> {
        let bucket = self.store.bucket(&req.input.bucket).await.map_err(s3_err)?;
        let config = config_of(&bucket).ok_or_else(|| {
            s3_error!(
                ReplicationConfigurationNotFoundError,
                "The replication configuration was not found"
            )
        })?;
        Ok(S3Response::new(GetBucketReplicationOutput {
            replication_configuration: Some(to_dto(&config)),
        }))
    }

    pub(super) async fn delete_bucket_replication_op(
        &self,
        req: S3Request<DeleteBucketReplicationInput>,
    ) -> S3Result<S3Response<DeleteBucketReplicationOutput>> {
        let bucket = req.input.bucket;
        self.store.bucket(&bucket).await.map_err(s3_err)?;
        self.store
            .set_bucket_config(&bucket, REPLICATION, None)
            .await
            .map_err(s3_err)?;
        self.replicator.configured(&bucket, None);
        Ok(S3Response::new(DeleteBucketReplicationOutput {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(auth: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(REPLICA_VERSION_HEADER, "null".parse().unwrap());
        h.insert(REPLICA_MTIME_HEADER, "1700000000000000000".parse().unwrap());
        h.insert(http::header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn replica_headers_need_a_signature_that_covers_them() {
        let uri: http::Uri = "/b/k".parse().unwrap();
        let good = signed("AWS4-HMAC-SHA256 Credential=a/20261130/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date;x-strata-replica-mtime;x-strata-replica-version-id, Signature=00");
        let of = replica_of(&good, &uri, true).unwrap().unwrap();
        assert_eq!(of.version_id, None);
        assert_eq!(of.mod_time_ns, 1_700_000_000_000_000_000);
        assert!(replica_of(&good, &uri, false).is_err(), "anonymous");
        let added = signed("AWS4-HMAC-SHA256 Credential=a/20261130/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00");
        assert!(
            replica_of(&added, &uri, true).is_err(),
            "headers outside the signature"
        );
        assert!(replica_of(&http::HeaderMap::new(), &uri, false)
            .unwrap()
            .is_none());
    }
}
