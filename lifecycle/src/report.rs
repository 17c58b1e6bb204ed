//! What operators ask of lifecycle: why a version has (not) expired (`explain`), and what a
//! configuration would do to a bucket before it is applied (`preview`).

use crate::evaluate::{self, Action, Clock, UploadFacts, Verdict};
use crate::model::Configuration;
use crate::scanner::{config_of, facts_of, Scanner};
use serde::Serialize;
use std::collections::BTreeMap;
use storage::list::{key_successor, SetWalk};
use storage::meta::{now_ns, ObjectRecord};
use storage::Store;

/// Keys shown per rule, day and action in a preview.
const SAMPLE: usize = 5;

/// An instant as `2026-11-30T00:00:00Z`.
pub fn rfc3339(ns: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One action a rule schedules for the version, and where it stands.
#[derive(Clone, Debug, Serialize)]
pub struct ActionReport {
    pub action: String,
    /// The storage class of a transition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// When it is due (AWS rounds up to the next midnight UTC), RFC 3339.
    pub due: String,
    pub due_ns: i64,
    /// `not due`, `due and queued`, `blocked by object lock`, `blocked by legal hold`,
    /// `failed: <error>`, `due: handed to tiering`.
    pub state: String,
}

/// One rule's verdict on the version.
#[derive(Clone, Debug, Serialize)]
pub struct RuleReport {
    pub rule_id: String,
    pub applies: bool,
    /// Why the rule does not apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why a rule that applies schedules nothing for this version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub actions: Vec<ActionReport>,
}

/// `strata admin lifecycle explain`.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    pub is_latest: bool,
    pub is_delete_marker: bool,
    pub size: u64,
    pub last_modified: String,
    /// Set when a lifecycle delete marker hides this version: lifecycle expired it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_by_lifecycle_at: Option<String>,
    /// The bucket has no lifecycle configuration.
    pub no_configuration: bool,
    /// Where the version's bytes are: `STANDARD` (the hot tier) or the tier it moved to, with
    /// when, and any restored copy.
    pub storage: String,
    pub rules: Vec<RuleReport>,
    pub now: String,
}

/// Where a version's bytes are, in words.
fn storage_of(version: &storage::meta::VersionRecord) -> String {
    let Some(obj) = version.object.as_ref() else {
        return "a delete marker: no data".into();
    };
    let Some(t) = obj.transition.as_ref() else {
        return format!("on the hot tier ({})", obj.storage_class);
    };
    let mut text = format!(
        "on tier {} since {} (remote key {})",
        t.tier,
        rfc3339(t.transitioned_ns),
        t.remote_key
    );
    match obj.restore {
        Some(r) if r.ongoing => text.push_str("; a restored copy is being made"),
        Some(r) => text.push_str(&format!("; restored copy until {}", rfc3339(r.expiry_ns))),
        None => {}
    }
    text
}

async fn record_of(store: &Store, bucket: &str, key: &str) -> Result<ObjectRecord, String> {
    let set = store.set_for(bucket, key);
    let upper = key_successor(key.as_bytes());
    let (entries, _) = set
        .list_resolved(bucket, key.as_bytes(), Some(&upper), 1)
        .await
        .map_err(|e| e.to_string())?;
    entries
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, r)| r)
        .ok_or_else(|| format!("no version of {bucket}/{key} exists"))
}

/// Why each rule of the bucket does or does not act on a version (the current one unless
/// `version_id` names one; `null` is the null version), with each action's exact due time and
/// its state.
pub async fn explain(
    scanner: &Scanner,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Explanation, String> {
    let store = scanner.store();
    let record_b = store.bucket(bucket).await.map_err(|e| e.to_string())?;
    let record = record_of(store, bucket, key).await?;
    let index = match version_id {
        None => 0,
        Some(want) => record
            .versions
            .iter()
            .position(|v| {
                v.version_id
                    .map_or_else(|| "null".into(), |id| id.to_string())
                    == want
            })
            .ok_or_else(|| format!("{bucket}/{key} has no version {want}"))?,
    };
    let versioning = record_b.versioning();
    let facts = facts_of(key, &record, index, versioning);
    let version = &record.versions[index];
    let vid = version
        .version_id
        .map_or_else(|| "null".into(), |id| id.to_string());
    let now = now_ns();
    let failures = scanner.failures_of(bucket, key);
    let config = config_of(&record_b);
    let mut rules = Vec::new();
    for verdict in config
        .as_ref()
        .map(|c| evaluate::explain(c, &facts, scanner.clock()))
        .unwrap_or_default()
    {
        let (applies, reason, dues) = match verdict.verdict {
            Verdict::Applies(d) => (true, None, d),
            Verdict::Disabled => (false, Some("the rule is disabled".to_owned()), vec![]),
            Verdict::PrefixDiffers { prefix } => (
                false,
                Some(format!("the key does not start with the prefix '{prefix}'")),
                vec![],
            ),
            Verdict::TagMissing { key: k, value } => (
                false,
                Some(format!("the object does not carry the tag {k}={value}")),
                vec![],
            ),
            Verdict::TooSmall { greater_than } => (
                false,
                Some(format!(
                    "the object is not larger than {greater_than} bytes (ObjectSizeGreaterThan)"
                )),
                vec![],
            ),
            Verdict::TooLarge { less_than } => (
                false,
                Some(format!(
                    "the object is not smaller than {less_than} bytes (ObjectSizeLessThan)"
                )),
                vec![],
            ),
        };
        let kept = config
            .as_ref()
            .and_then(|c| c.rules.iter().find(|r| r.id == verdict.rule_id))
            .and_then(|r| r.noncurrent_expiration.as_ref())
            .and_then(|n| n.newer_noncurrent_versions)
            .filter(|n| !facts.is_latest && facts.newer_noncurrent < *n);
        let note = (applies && dues.is_empty()).then(|| match kept {
            Some(n) => {
                format!("kept: one of the {n} newest noncurrent versions (NewerNoncurrentVersions)")
            }
            None => "no action of this rule concerns this version".to_owned(),
        });
        let actions = dues
            .into_iter()
            .map(|d| {
                let failure = failures
                    .iter()
                    .find(|f| f.version == vid && f.action == d.action.name());
                let locked = facts.locked_until_ns.filter(|t| *t > now);
                let state = if d.at_ns > now {
                    "not due".to_owned()
                } else if let Some(f) = failure {
                    format!("failed: {}", f.error)
                } else if matches!(d.action, Action::Transition { .. }) {
                    "due: handed to tiering".to_owned()
                } else if d.action.removes_version() && locked == Some(i64::MAX) {
                    "blocked by legal hold".to_owned()
                } else if d.action.removes_version() && locked.is_some() {
                    "blocked by object lock".to_owned()
                } else {
                    "due and queued".to_owned()
                };
                ActionReport {
                    action: d.action.name().to_owned(),
                    storage_class: match &d.action {
                        Action::Transition { storage_class } => Some(storage_class.clone()),
                        _ => None,
                    },
                    due: rfc3339(d.at_ns),
                    due_ns: d.at_ns,
                    state,
                }
            })
            .collect();
        rules.push(RuleReport {
            rule_id: verdict.rule_id,
            applies,
            reason,
            note,
            actions,
        });
    }
    let expired_by_lifecycle_at = index
        .checked_sub(1)
        .map(|i| &record.versions[i])
        .filter(|v| v.lifecycle_marker)
        .map(|v| rfc3339(v.mod_time_ns));
    Ok(Explanation {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: vid,
        is_latest: facts.is_latest,
        is_delete_marker: facts.is_delete_marker,
        size: facts.size,
        last_modified: rfc3339(version.mod_time_ns),
        expired_by_lifecycle_at,
        no_configuration: config.is_none(),
        storage: storage_of(version),
        rules,
        now: rfc3339(now),
    })
}

/// What one rule would do on one day of a preview.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DayCount {
    /// 0: due now (or overdue); N: within the N-th lifecycle day from now.
    pub day: u32,
    /// The end of that day's window (now for day 0), RFC 3339.
    pub date: String,
    pub action: String,
    pub versions: u64,
    pub bytes: u64,
    pub sample: Vec<String>,
}

/// One rule's effect over the preview window.
#[derive(Clone, Debug, Serialize)]
pub struct RulePreview {
    pub rule_id: String,
    pub days: Vec<DayCount>,
}

/// `strata admin lifecycle preview`.
#[derive(Clone, Debug, Serialize)]
pub struct Preview {
    pub bucket: String,
    pub days: u32,
    pub now: String,
    pub versions_evaluated: u64,
    pub rules: Vec<RulePreview>,
}

/// Evaluates `config` (applied or not) against the bucket as it is: per rule, day by day
/// for the next `days` days, how many versions (and bytes) and uploads its actions would
/// reach, with a sample of keys. Each rule is counted on its own; changes one action makes
/// (a delete marker aging the versions below it) are not projected.
pub async fn preview(
    store: &Store,
    bucket: &str,
    config: &Configuration,
    clock: Clock,
    days: u32,
) -> Result<Preview, String> {
    let record_b = store.bucket(bucket).await.map_err(|e| e.to_string())?;
    let versioning = record_b.versioning();
    let now = now_ns();
    let day_of = |at: i64| -> Option<u32> {
        let d = if at <= now {
            0
        } else {
            ((at - now + clock.day_ns - 1) / clock.day_ns) as u32
        };
        (d <= days).then_some(d)
    };
    // (rule index, day, action) → counts
    let mut counts: BTreeMap<(usize, u32, String), DayCount> = BTreeMap::new();
    let mut add = |rule: usize, day: u32, action: &str, key: &str, bytes: u64| {
        let c = counts.entry((rule, day, action.to_owned())).or_default();
        c.versions += 1;
        c.bytes += bytes;
        if c.sample.len() < SAMPLE {
            c.sample.push(key.to_owned());
        }
    };
    // Each rule is judged on its own.
    let single: Vec<Configuration> = config
        .rules
        .iter()
        .map(|r| Configuration {
            rules: vec![r.clone()],
            ..config.clone()
        })
        .collect();
    let mut evaluated = 0;
    for set in store.sets() {
        let mut walk = SetWalk::from(Vec::new());
        while let Some(entries) = walk
            .next_page(set, bucket, 1000)
            .await
            .map_err(|e| e.to_string())?
        {
            for (key, record) in &entries {
                for i in 0..record.versions.len() {
                    evaluated += 1;
                    let facts = facts_of(key, record, i, versioning);
                    for (r, one) in single.iter().enumerate() {
                        if let Some(first) = evaluate::schedule(one, &facts, clock).first() {
                            if let Some(day) = day_of(first.at_ns) {
                                add(r, day, first.action.name(), key, facts.size);
                            }
                        }
                    }
                }
            }
        }
    }
    for upload in store
        .list_uploads(bucket)
        .await
        .map_err(|e| e.to_string())?
    {
        let facts = UploadFacts {
            key: &upload.key,
            initiated_ns: upload.initiated_ns,
        };
        for (r, one) in single.iter().enumerate() {
            if let Some(d) = evaluate::upload_abort(one, &facts, clock) {
                if let Some(day) = day_of(d.at_ns) {
                    add(r, day, d.action.name(), &upload.key, 0);
                }
            }
        }
    }
    let rules = config
        .rules
        .iter()
        .enumerate()
        .map(|(r, rule)| RulePreview {
            rule_id: rule.id.clone(),
            days: counts
                .iter()
                .filter(|((i, _, _), _)| *i == r)
                .map(|((_, day, action), c)| DayCount {
                    day: *day,
                    date: rfc3339(now + i64::from(*day) * clock.day_ns),
                    action: action.clone(),
                    ..c.clone()
                })
                .collect(),
        })
        .collect();
    Ok(Preview {
        bucket: bucket.to_owned(),
        days,
        now: rfc3339(now),
        versions_evaluated: evaluated,
        rules,
    })
}
