//! Put/Get/DeleteBucketLifecycleConfiguration: the XML schema mapped onto the `lifecycle`
//! crate's model (shape errors here, AWS's rules in `lifecycle::validate`), stored as a
//! bucket configuration; and the `x-amz-expiration` / `x-amz-abort-date` headers that tell a
//! client when a rule will act on what it just wrote.

use super::checksum;
use super::{custom_error, http_date, timestamp, Gateway};
use crate::s3::error::s3_err;
use lifecycle::evaluate::{self, Clock, Due, UploadFacts, VersionFacts};
use lifecycle::{Configuration, Expiration, Filter, FilterForm, Rule, When};
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use storage::meta::{BucketRecord, ObjectVersion};

/// Bucket config entry holding the lifecycle configuration (JSON of `lifecycle::Configuration`).
pub const LIFECYCLE: &str = lifecycle::scanner::CONFIG_KEY;

/// `x-amz-transition-default-minimum-object-size` values: Strata's default lets objects of any
/// size transition (as AWS's Glacier classes under `varies_by_storage_class`); AWS's own
/// default, which Terraform sends, keeps objects under 128 KiB on the hot tier.
const MIN_SIZE_ANY: &str = "varies_by_storage_class";
const MIN_SIZE_128K: &str = "all_storage_classes_128K";

/// The minimum size a header value stands for, in bytes.
fn min_size_of(value: Option<&TransitionDefaultMinimumObjectSize>) -> S3Result<u64> {
    match value.map(|v| v.as_str()) {
        None | Some(MIN_SIZE_ANY) => Ok(0),
        Some(MIN_SIZE_128K) => Ok(128 * 1024),
        Some(other) => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("Invalid x-amz-transition-default-minimum-object-size: {other}"),
        )),
    }
}

/// The header value a stored minimum size is reported as.
fn min_size_header(bytes: u64) -> TransitionDefaultMinimumObjectSize {
    TransitionDefaultMinimumObjectSize::from_static(if bytes == 0 {
        MIN_SIZE_ANY
    } else {
        MIN_SIZE_128K
    })
}

fn malformed(why: impl std::fmt::Display) -> S3Error {
    s3_error!(
        MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema: {why}"
    )
}

fn invalid(why: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, why.into())
}

/// Decoded configurations by bucket, reused while the stored document is the same: every
/// PUT, GET and HEAD in a bucket with rules needs them for `x-amz-expiration`.
type Decoded = HashMap<String, (Vec<u8>, Arc<Configuration>)>;
static DECODED: LazyLock<Mutex<Decoded>> = LazyLock::new(Default::default);

/// A bucket's lifecycle configuration, if it has one.
pub fn config_of(bucket: &BucketRecord) -> Option<Arc<Configuration>> {
    let bytes = bucket.config.get(LIFECYCLE)?;
    let mut cache = DECODED.lock().expect("lock");
    if let Some((stored, config)) = cache.get(&bucket.name) {
        if stored == bytes {
            return Some(config.clone());
        }
    }
    let config = Arc::new(lifecycle::scanner::config_of(bucket)?);
    cache.insert(bucket.name.clone(), (bytes.clone(), config.clone()));
    Some(config)
}

fn days(value: Option<i32>, what: &str, rule: &str) -> S3Result<Option<u32>> {
    match value {
        None => Ok(None),
        Some(d) if d > 0 => Ok(Some(d as u32)),
        Some(_) => Err(invalid(format!(
            "'{what}' in rule '{rule}' must be a positive integer"
        ))),
    }
}

fn date_secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

fn tags_of(set: Option<Vec<Tag>>) -> S3Result<Vec<(String, String)>> {
    set.unwrap_or_default()
        .into_iter()
        .map(|t| match (t.key, t.value) {
            // AWS's limits for tags (as for object tags): key 1–128, value 0–256 characters.
            (Some(k), Some(v)) if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 => {
                Err(S3Error::with_message(
                    S3ErrorCode::InvalidTag,
                    "The TagKey you have provided is invalid: a tag key is 1 to 128 characters and a value at most 256",
                ))
            }
            (Some(k), Some(v)) => Ok((k, v)),
            _ => Err(malformed("a Tag needs a Key and a Value")),
        })
        .collect()
}

fn size(v: Option<i64>) -> S3Result<Option<u64>> {
    v.map(|n| u64::try_from(n).map_err(|_| invalid("Object size bounds must not be negative")))
        .transpose()
}

/// The filter of a rule: the legacy top-level `Prefix`, or a `Filter` holding exactly one of
/// Prefix, Tag, ObjectSizeGreaterThan, ObjectSizeLessThan, And (or nothing).
fn filter_of(prefix: Option<String>, filter: Option<LifecycleRuleFilter>) -> S3Result<Filter> {
    let f = match (prefix, filter) {
        (Some(_), Some(_)) => return Err(malformed("a rule takes Prefix or Filter, not both")),
        (None, None) => return Err(malformed("a rule needs a Filter (or the legacy Prefix)")),
        (Some(p), None) => {
            return Ok(Filter {
                prefix: p,
                form: FilterForm::LegacyPrefix,
                ..Default::default()
            })
        }
        (None, Some(f)) => f,
    };
    let given = [
        f.prefix.is_some(),
        f.tag.is_some(),
        f.object_size_greater_than.is_some(),
        f.object_size_less_than.is_some(),
        f.and.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(malformed(
            "a Filter holds one of Prefix, Tag, ObjectSizeGreaterThan, ObjectSizeLessThan or And; combine them with And",
        ));
    }
    let mut out = Filter::default();
    if let Some(p) = f.prefix {
        out.prefix = p;
        out.form = FilterForm::Prefix;
    } else if let Some(t) = f.tag {
        out.tags = tags_of(Some(vec![t]))?;
        out.form = FilterForm::Tag;
    } else if let Some(n) = f.object_size_greater_than {
        out.size_greater_than = size(Some(n))?;
        out.form = FilterForm::SizeGreaterThan;
    } else if let Some(n) = f.object_size_less_than {
        out.size_less_than = size(Some(n))?;
        out.form = FilterForm::SizeLessThan;
    } else if let Some(and) = f.and {
        out.prefix = and.prefix.unwrap_or_default();
        out.tags = tags_of(and.tags)?;
        out.size_greater_than = size(and.object_size_greater_than)?;
        out.size_less_than = size(and.object_size_less_than)?;
        out.form = FilterForm::And;
    }
    Ok(out)
}

fn expiration_of(e: LifecycleExpiration, rule: &str) -> S3Result<Option<Expiration>> {
    let marker = e.expired_object_delete_marker == Some(true);
    match (days(e.days, "Days", rule)?, e.date, marker) {
        (Some(_), Some(_), _) => Err(invalid(format!(
            "Rule '{rule}': Expiration takes either Days or Date, not both"
        ))),
        (Some(_), _, true) | (_, Some(_), true) => Err(invalid(format!(
            "Rule '{rule}': ExpiredObjectDeleteMarker cannot be specified with Days or Date in a Lifecycle Expiration Policy"
        ))),
        (Some(d), None, false) => Ok(Some(Expiration::Days(d))),
        (None, Some(t), false) => Ok(Some(Expiration::Date(date_secs(&t)))),
        (None, None, true) => Ok(Some(Expiration::ExpiredObjectDeleteMarker)),
        (None, None, false) => Err(malformed(format!(
            "rule '{rule}' has an Expiration without Days, Date or ExpiredObjectDeleteMarker"
        ))),
    }
}

fn class_of(c: Option<TransitionStorageClass>, rule: &str) -> S3Result<String> {
    c.map(|c| c.as_str().to_owned()).ok_or_else(|| {
        malformed(format!(
            "a transition of rule '{rule}' needs a StorageClass"
        ))
    })
}

/// One XML rule as the model's rule; shape errors are MalformedXML or InvalidArgument.
fn rule_of(r: LifecycleRule) -> S3Result<Rule> {
    // AWS names a rule sent without an ID.
    let id =
        r.id.filter(|id| !id.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let enabled = match r.status.as_str() {
        ExpirationStatus::ENABLED => true,
        ExpirationStatus::DISABLED => false,
        other => {
            return Err(malformed(format!(
                "Status must be Enabled or Disabled, not {other}"
            )))
        }
    };
    let filter = filter_of(r.prefix, r.filter)?;
    let expiration = match r.expiration {
        Some(e) => expiration_of(e, &id)?,
        None => None,
    };
    let noncurrent_expiration = match r.noncurrent_version_expiration {
        None => None,
        Some(n) => Some(lifecycle::NoncurrentExpiration {
            days: days(n.noncurrent_days, "NoncurrentDays", &id)?.ok_or_else(|| {
                malformed(format!(
                    "NoncurrentVersionExpiration of rule '{id}' needs NoncurrentDays"
                ))
            })?,
            newer_noncurrent_versions: versions(n.newer_noncurrent_versions, &id)?,
        }),
    };
    let abort_incomplete_upload_days = match r.abort_incomplete_multipart_upload {
        None => None,
        Some(a) => Some(
            days(a.days_after_initiation, "DaysAfterInitiation", &id)?.ok_or_else(|| {
                malformed(format!(
                    "AbortIncompleteMultipartUpload of rule '{id}' needs DaysAfterInitiation"
                ))
            })?,
        ),
    };
    let mut transitions = Vec::new();
    for t in r.transitions.unwrap_or_default() {
        let when = match (t.days, t.date) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(invalid(format!(
                    "Rule '{id}': a Transition takes either Days or Date"
                )))
            }
            (Some(d), None) => When::Days(u32::try_from(d).map_err(|_| {
                invalid(format!(
                    "'Days' in the Transition action of rule '{id}' must be nonnegative"
                ))
            })?),
            (None, Some(t)) => When::Date(date_secs(&t)),
        };
        transitions.push(lifecycle::Transition {
            when,
            storage_class: class_of(t.storage_class, &id)?,
        });
    }
    let mut noncurrent_transitions = Vec::new();
    for t in r.noncurrent_version_transitions.unwrap_or_default() {
        noncurrent_transitions.push(lifecycle::NoncurrentTransition {
            days: days(t.noncurrent_days, "NoncurrentDays", &id)?.ok_or_else(|| {
                malformed(format!(
                    "NoncurrentVersionTransition of rule '{id}' needs NoncurrentDays"
                ))
            })?,
            newer_noncurrent_versions: versions(t.newer_noncurrent_versions, &id)?,
            storage_class: class_of(t.storage_class, &id)?,
        });
    }
    Ok(Rule {
        id,
        enabled,
        filter,
        expiration,
        noncurrent_expiration,
        abort_incomplete_upload_days,
        transitions,
        noncurrent_transitions,
    })
}

fn versions(n: Option<i32>, rule: &str) -> S3Result<Option<u32>> {
    n.map(|n| {
        u32::try_from(n).map_err(|_| {
            invalid(format!(
                "NewerNoncurrentVersions of rule '{rule}' must be a positive integer"
            ))
        })
    })
    .transpose()
}

fn timestamp_of_secs(secs: i64) -> Timestamp {
    Timestamp::from(
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    )
}

fn tag(k: &str, v: &str) -> Tag {
    Tag {
        key: Some(k.to_owned()),
        value: Some(v.to_owned()),
    }
}

/// The model's rule as XML, in the shape it was given.
fn xml_of(r: &Rule) -> LifecycleRule {
    let f = &r.filter;
    let size = |n: Option<u64>| n.map(|n| n as i64);
    let (prefix, filter) = match f.form {
        FilterForm::LegacyPrefix => (Some(f.prefix.clone()), None),
        FilterForm::Empty => (None, Some(LifecycleRuleFilter::default())),
        FilterForm::Prefix => (
            None,
            Some(LifecycleRuleFilter {
                prefix: Some(f.prefix.clone()),
                ..Default::default()
            }),
        ),
        FilterForm::Tag => (
            None,
            Some(LifecycleRuleFilter {
                tag: f.tags.first().map(|(k, v)| tag(k, v)),
                ..Default::default()
            }),
        ),
        FilterForm::SizeGreaterThan => (
            None,
            Some(LifecycleRuleFilter {
                object_size_greater_than: size(f.size_greater_than),
                ..Default::default()
            }),
        ),
        FilterForm::SizeLessThan => (
            None,
            Some(LifecycleRuleFilter {
                object_size_less_than: size(f.size_less_than),
                ..Default::default()
            }),
        ),
        FilterForm::And => (
            None,
            Some(LifecycleRuleFilter {
                and: Some(LifecycleRuleAndOperator {
                    prefix: (!f.prefix.is_empty()).then(|| f.prefix.clone()),
                    tags: (!f.tags.is_empty())
                        .then(|| f.tags.iter().map(|(k, v)| tag(k, v)).collect()),
                    object_size_greater_than: size(f.size_greater_than),
                    object_size_less_than: size(f.size_less_than),
                }),
                ..Default::default()
            }),
        ),
    };
    LifecycleRule {
        id: Some(r.id.clone()),
        status: ExpirationStatus::from_static(if r.enabled {
            ExpirationStatus::ENABLED
        } else {
            ExpirationStatus::DISABLED
        }),
        prefix,
        filter,
        expiration: r.expiration.as_ref().map(|e| match e {
            Expiration::Days(d) => LifecycleExpiration {
                days: Some(*d as i32),
                ..Default::default()
            },
            Expiration::Date(s) => LifecycleExpiration {
                date: Some(timestamp_of_secs(*s)),
                ..Default::default()
            },
            Expiration::ExpiredObjectDeleteMarker => LifecycleExpiration {
                expired_object_delete_marker: Some(true),
                ..Default::default()
            },
        }),
        noncurrent_version_expiration: r.noncurrent_expiration.as_ref().map(|n| {
            NoncurrentVersionExpiration {
                noncurrent_days: Some(n.days as i32),
                newer_noncurrent_versions: n.newer_noncurrent_versions.map(|v| v as i32),
            }
        }),
        abort_incomplete_multipart_upload: r.abort_incomplete_upload_days.map(|d| {
            AbortIncompleteMultipartUpload {
                days_after_initiation: Some(d as i32),
            }
        }),
        transitions: (!r.transitions.is_empty()).then(|| {
            r.transitions
                .iter()
                .map(|t| s3s::dto::Transition {
                    days: match t.when {
                        When::Days(d) => Some(d as i32),
                        When::Date(_) => None,
                    },
                    date: match t.when {
                        When::Date(s) => Some(timestamp_of_secs(s)),
                        When::Days(_) => None,
                    },
                    storage_class: Some(TransitionStorageClass::from(t.storage_class.clone())),
                })
                .collect()
        }),
        noncurrent_version_transitions: (!r.noncurrent_transitions.is_empty()).then(|| {
            r.noncurrent_transitions
                .iter()
                .map(|t| NoncurrentVersionTransition {
                    noncurrent_days: Some(t.days as i32),
                    newer_noncurrent_versions: t.newer_noncurrent_versions.map(|v| v as i32),
                    storage_class: Some(TransitionStorageClass::from(t.storage_class.clone())),
                })
                .collect()
        }),
    }
}

/// Parses and checks a configuration as PutBucketLifecycleConfiguration receives it;
/// `is_tier` says which storage classes transitions may name (the registered tiers).
pub fn configuration_of(
    xml: BucketLifecycleConfiguration,
    is_tier: &dyn Fn(&str) -> bool,
) -> S3Result<Configuration> {
    let rules = xml
        .rules
        .into_iter()
        .map(rule_of)
        .collect::<S3Result<Vec<_>>>()?;
    let config = Configuration {
        rules,
        ..Default::default()
    };
    lifecycle::validate(&config, is_tier).map_err(|e| {
        let mut err = S3Error::with_message(S3ErrorCode::Custom(e.code.into()), e.message);
        err.set_status_code(http::StatusCode::BAD_REQUEST);
        err
    })?;
    Ok(config)
}

/// The XML element that holds one item of a JSON list, as the aws CLI's JSON names lists.
fn item_name(list: &str) -> &str {
    match list {
        "Rules" => "Rule",
        "Tags" => "Tag",
        "Transitions" => "Transition",
        "NoncurrentVersionTransitions" => "NoncurrentVersionTransition",
        other => other,
    }
}

fn json_to_xml(name: &str, v: &serde_json::Value, out: &mut String) {
    use crate::body_check::escape_xml as escape;
    use serde_json::Value;
    match v {
        Value::Array(items) => {
            for item in items {
                json_to_xml(item_name(name), item, out);
            }
        }
        Value::Object(fields) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in fields {
                json_to_xml(k, v, out);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => {}
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

/// A configuration given as a file to `strata admin lifecycle preview`: the XML of
/// PutBucketLifecycleConfiguration, or the JSON the aws CLI's
/// `--lifecycle-configuration` takes (`{"Rules": [...]}`), checked as a PUT checks it.
pub fn lifecycle_configuration(
    body: &[u8],
    is_tier: &dyn Fn(&str) -> bool,
) -> S3Result<Configuration> {
    use s3s::xml::Deserialize;
    let text = String::from_utf8_lossy(body);
    let xml = if text.trim_start().starts_with('<') {
        text.into_owned()
    } else {
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| malformed(format!("neither XML nor JSON: {e}")))?;
        let mut xml = String::new();
        json_to_xml("LifecycleConfiguration", &json, &mut xml);
        xml
    };
    let mut d = s3s::xml::Deserializer::new(xml.as_bytes());
    let parsed = BucketLifecycleConfiguration::deserialize(&mut d).map_err(malformed)?;
    configuration_of(parsed, is_tier)
}

/// An `x-amz-expiration` value: `expiry-date="Fri, 23 Dec 2012 00:00:00 GMT", rule-id="r"`.
fn expiration_header(due: &Due) -> Option<String> {
    let date = http_date(&timestamp(due.at_ns))?;
    // AWS sends the rule id URL-encoded: an id may hold quotes, commas or any Unicode.
    let rule_id =
        percent_encoding::utf8_percent_encode(&due.rule_id, percent_encoding::NON_ALPHANUMERIC);
    Some(format!("expiry-date=\"{date}\", rule-id=\"{rule_id}\""))
}

/// The `x-amz-expiration` of a current version just written or read: when the earliest
/// matching Expiration rule will expire it.
pub fn expiration_of_version(
    bucket: &BucketRecord,
    key: &str,
    obj: &ObjectVersion,
    mod_time_ns: i64,
    clock: Clock,
) -> Option<String> {
    let config = config_of(bucket)?;
    let facts = VersionFacts {
        key,
        size: obj.size,
        tags: &obj.tags,
        mod_time_ns,
        is_latest: true,
        is_delete_marker: false,
        noncurrent_since_ns: None,
        newer_noncurrent: 0,
        only_version: false,
        locked_until_ns: None,
        versioned: super::versioning::versioning(bucket) != storage::Versioning::Unversioned,
        storage_class: &obj.storage_class,
    };
    expiration_header(&evaluate::expiration(&config, &facts, clock)?)
}

/// `x-amz-abort-date` and `x-amz-abort-rule-id` of an upload a rule will abort.
pub fn abort_of_upload(
    bucket: &BucketRecord,
    key: &str,
    initiated_ns: i64,
    clock: Clock,
) -> Option<(Timestamp, String)> {
    let config = config_of(bucket)?;
    let due = evaluate::upload_abort(&config, &UploadFacts { key, initiated_ns }, clock)?;
    Some((timestamp(due.at_ns), due.rule_id))
}

impl Gateway {
    pub(super) async fn put_bucket_lifecycle_configuration_op(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        checksum::require_integrity(&req.headers)?;
        let input = req.input;
        self.store.bucket(&input.bucket).await.map_err(s3_err)?;
        let min_size = min_size_of(input.transition_default_minimum_object_size.as_ref())?;
        let xml = input
            .lifecycle_configuration
            .ok_or_else(|| malformed("the body holds no LifecycleConfiguration"))?;
        let mut config = configuration_of(xml, &|class| self.tiering.is_tier(class))?;
        config.transition_min_size = min_size;
        self.store
            .set_bucket_config(&input.bucket, LIFECYCLE, Some(config.encode()))
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(PutBucketLifecycleConfigurationOutput {
            transition_default_minimum_object_size: Some(min_size_header(min_size)),
        }))
    }

    pub(super) async fn get_bucket_lifecycle_configuration_op(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        let bucket = self.store.bucket(&req.input.bucket).await.map_err(s3_err)?;
        let Some(config) = config_of(&bucket) else {
            return Err(custom_error(
                "NoSuchLifecycleConfiguration",
                http::StatusCode::NOT_FOUND,
                "The lifecycle configuration does not exist",
            ));
        };
        Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
            rules: Some(config.rules.iter().map(xml_of).collect()),
            transition_default_minimum_object_size: Some(min_size_header(
                config.transition_min_size,
            )),
        }))
    }

    pub(super) async fn delete_bucket_lifecycle_op(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        let bucket = &req.input.bucket;
        self.store.bucket(bucket).await.map_err(s3_err)?;
        self.store
            .set_bucket_config(bucket, LIFECYCLE, None)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(DeleteBucketLifecycleOutput {}))
    }
}
