//! Evaluation: pure functions from (rules, what is known of a version or an upload, a clock)
//! to the actions due and when. No I/O; the scanner and the S3 front call these.

use crate::model::Configuration;
use matching::exclusion;
use plan::{entries, Entry};
use std::collections::BTreeMap;

/// Nanoseconds in a real day.
pub const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// The length of a lifecycle day. AWS counts whole days and rounds a due time up to the next
/// midnight UTC; tests and demos shorten the day (`lifecycle_day_seconds`, as Ceph's
/// `rgw_lc_debug_interval`), and "midnight" is then the next multiple of the day since the
/// Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    pub day_ns: i64,
}

impl Default for Clock {
    fn default() -> Self {
        Self { day_ns: DAY_NS }
    }
}

impl Clock {
    /// `t_ns` plus `days` days, rounded up to the next lifecycle midnight (an instant already
    /// at midnight stays).
    ///
    /// Midnight is a multiple of `day_ns` since the Unix epoch: with the real day, 00:00 UTC
    /// (AWS: "adding the number of days specified in the rule to the object creation time
    /// and rounding up the resulting time to the next day at midnight UTC",
    /// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/intro-lifecycle-rules.html>).
    /// A `day_ns` that is not positive counts as a real day; a result past `i64::MAX`
    /// saturates there.
    pub fn days_after(&self, t_ns: i64, days: u32) -> i64 {
        // A misconfigured day of 0 ns would make every rule due at once; a real day fails
        // safe.
        let day = i128::from(if self.day_ns > 0 { self.day_ns } else { DAY_NS });
        let t = i128::from(t_ns) + i128::from(days) * day;
        let midnight = (t + day - 1).div_euclid(day) * day;
        i64::try_from(midnight).unwrap_or(i64::MAX)
    }
}

/// What the scanner knows of one version when it judges it.
#[derive(Clone, Debug)]
pub struct VersionFacts<'a> {
    pub key: &'a str,
    /// Bytes (0 for a delete marker).
    pub size: u64,
    pub tags: &'a BTreeMap<String, String>,
    /// Creation (modification) time, ns since the Unix epoch.
    pub mod_time_ns: i64,
    /// The key's newest version (delete markers included).
    pub is_latest: bool,
    pub is_delete_marker: bool,
    /// When the version became noncurrent: its successor's creation time (`None` for the
    /// latest version).
    pub noncurrent_since_ns: Option<i64>,
    /// How many noncurrent versions of the key are newer than this one (0 for the newest
    /// noncurrent version).
    pub newer_noncurrent: u32,
    /// The key has no other version (for a delete marker: it is an expired object delete
    /// marker).
    pub only_version: bool,
    /// Object lock protects the version until this instant (ns); `Some(i64::MAX)` under a
    /// legal hold.
    pub locked_until_ns: Option<i64>,
    /// The bucket's versioning is Enabled or Suspended (expiring a current version then
    /// places a delete marker instead of deleting it).
    pub versioned: bool,
    /// The version's storage class now (a transitioned version is on its tier's class).
    pub storage_class: &'a str,
}

/// What a multipart upload in progress is judged by.
#[derive(Clone, Debug)]
pub struct UploadFacts<'a> {
    pub key: &'a str,
    pub initiated_ns: i64,
}

/// An action a rule takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Expire the current version as DeleteObject without a version id does: a delete marker
    /// in a versioned bucket (`null` when Suspended), a deletion in an unversioned one.
    ExpireCurrent,
    /// Remove a noncurrent version permanently.
    DeleteNoncurrent,
    /// Remove an expired object delete marker (its key's only version).
    DeleteMarker,
    /// Move the version to the tier named by the storage class (carried out by tiering).
    Transition { storage_class: String },
    /// Abort an incomplete multipart upload.
    AbortUpload,
}

impl Action {
    /// Whether the action removes a version for good (what object lock forbids).
    pub fn removes_version(&self) -> bool {
        matches!(self, Action::DeleteNoncurrent | Action::DeleteMarker)
    }

    /// Whether carrying the action out on a version removes data for good, given whether the
    /// bucket is versioned (Enabled or Suspended): `removes_version`, and `ExpireCurrent` in
    /// an unversioned bucket. These are the actions object lock holds back (`due` uses it).
    pub fn removes_data(&self, versioned: bool) -> bool {
        self.removes_version() || (*self == Action::ExpireCurrent && !versioned)
    }

    /// A short name for metrics and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Action::ExpireCurrent => "expire_current",
            Action::DeleteNoncurrent => "delete_noncurrent",
            Action::DeleteMarker => "delete_marker",
            Action::Transition { .. } => "transition",
            Action::AbortUpload => "abort_upload",
        }
    }
}

/// An action a rule schedules, and from when it is due (ns since the epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub action: Action,
    pub rule_id: String,
    pub at_ns: i64,
}

/// Why a rule does or does not apply to a version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The rule matches; the actions it schedules for this version (possibly none, e.g. a
    /// noncurrent rule for the current version), earliest first.
    Applies(Vec<Due>),
    Disabled,
    /// The key does not start with the rule's prefix.
    PrefixDiffers {
        prefix: String,
    },
    /// The object lacks a tag (or has another value for it).
    TagMissing {
        key: String,
        value: String,
    },
    /// The object is not larger than `ObjectSizeGreaterThan`.
    TooSmall {
        greater_than: u64,
    },
    /// The object is not smaller than `ObjectSizeLessThan`.
    TooLarge {
        less_than: u64,
    },
}

/// One rule's verdict on a version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleVerdict {
    pub rule_id: String,
    pub verdict: Verdict,
}

/// Every action the enabled, matching rules schedule for a version, earliest first (between
/// equal times, in rule order), before object lock is considered.
///
/// What each rule schedules (AWS, "Lifecycle configuration elements" and "Expiring
/// objects", <https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html>):
/// - `Expiration` `Days`/`Date`: `ExpireCurrent` for a current version that is not a delete
///   marker; for an expired object delete marker (the key's only version) `DeleteMarker`
///   once it is as old as `Days` (or on `Date`), since "when you specify the Days tag,
///   Amazon S3 automatically performs ExpiredObjectDeleteMarker cleanup when the delete
///   markers are old enough to satisfy the age criteria". A current delete marker with other
///   versions gets nothing.
/// - `ExpiredObjectDeleteMarker`: `DeleteMarker` for an expired object delete marker, due
///   from its creation.
/// - `NoncurrentVersionExpiration`: `DeleteNoncurrent` for a noncurrent version (delete
///   markers included) `NoncurrentDays` after it became noncurrent, once at least
///   `NewerNoncurrentVersions` newer noncurrent versions exist ("both ... must be
///   exceeded"). A version whose `noncurrent_since_ns` is unknown gets nothing.
/// - `Transition` / `NoncurrentVersionTransition`: `Transition` for a version that is not a
///   delete marker and not already in that class. A transition no later than one whose class
///   the version is already in is left out too, so a version that went down a waterfall
///   (tier A at 30 days, then B at 90) is never sent back up it.
pub fn schedule(config: &Configuration, v: &VersionFacts, clock: Clock) -> Vec<Due> {
    entries(config, v, clock)
        .into_iter()
        .map(|e| e.due)
        .collect()
}

/// The action to take on a version at `now`, if any: among the scheduled actions whose time
/// has come, AWS's precedence (a permanent deletion over a transition over placing a delete
/// marker; between equals, the earliest). A removal that object lock forbids at `now` is not
/// due (object lock always wins); placing a delete marker is allowed on a locked version, as
/// AWS allows it.
///
/// Permanent deletions are `DeleteNoncurrent`, `DeleteMarker` and, in an unversioned bucket,
/// `ExpireCurrent`; in a versioned (or suspended) one `ExpireCurrent` only places a marker
/// and ranks last (AWS, "How Amazon S3 handles conflicts in lifecycle configurations":
/// "Permanent deletion takes precedence over transition. Transition takes precedence over
/// creation of delete markers",
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-conflicts.html>).
/// Between two due transitions the later-scheduled one wins (then rule order): a waterfall's
/// later step is its colder class, and AWS moves an object eligible for two transitions to
/// the lower-cost class in one step. A version is locked while `locked_until_ns > now`.
pub fn due(config: &Configuration, v: &VersionFacts, clock: Clock, now_ns: i64) -> Option<Due> {
    let locked = v.locked_until_ns.is_some_and(|until| until > now_ns);
    let mut best: Option<(u8, Entry)> = None;
    for e in entries(config, v, clock) {
        if e.due.at_ns > now_ns || (locked && e.due.action.removes_data(v.versioned)) {
            continue;
        }
        let rank = rank(&e.due.action, v);
        let better = match &best {
            None => true,
            Some((best_rank, _)) if rank != *best_rank => rank < *best_rank,
            // Entries come earliest first, then in rule order: a tie keeps the first seen.
            Some((_, b)) => {
                matches!(e.due.action, Action::Transition { .. }) && e.due.at_ns > b.due.at_ns
            }
        };
        if better {
            best = Some((rank, e));
        }
    }
    best.map(|(_, e)| e.due)
}

/// Each rule's verdict on a version, in the configuration's order (for `explain`): the
/// first part of the rule that excludes the version (`Disabled`, then the prefix, the tags
/// in the filter's order, `ObjectSizeGreaterThan`, `ObjectSizeLessThan`), or the actions the
/// rule schedules for it, as `schedule` lists them.
pub fn explain(config: &Configuration, v: &VersionFacts, clock: Clock) -> Vec<RuleVerdict> {
    let scheduled = entries(config, v, clock);
    config
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| RuleVerdict {
            rule_id: rule.id.clone(),
            verdict: exclusion(rule, v).unwrap_or_else(|| {
                Verdict::Applies(
                    scheduled
                        .iter()
                        .filter(|e| e.rule == i)
                        .map(|e| e.due.clone())
                        .collect(),
                )
            }),
        })
        .collect()
}

/// The `x-amz-expiration` of a current object version: the earliest expiration (Days or
/// Date) of the enabled rules that match it, with its rule id.
///
/// `None` for a noncurrent version or a delete marker (AWS sends no header for them, nor
/// for a rule of `ExpiredObjectDeleteMarker` alone). Between rules due at the same instant,
/// the first listed is named, as S3 was observed to do.
pub fn expiration(config: &Configuration, v: &VersionFacts, clock: Clock) -> Option<Due> {
    if !v.is_latest || v.is_delete_marker {
        return None;
    }
    entries(config, v, clock)
        .into_iter()
        .map(|e| e.due)
        .find(|d| d.action == Action::ExpireCurrent)
}

/// When an upload is to be aborted (the earliest matching AbortIncompleteMultipartUpload
/// rule; `x-amz-abort-date` and `x-amz-abort-rule-id`), whether or not that time has come.
///
/// Only the prefix selects uploads (AWS: the action applies to uploads "determined by the
/// key name prefix specified in the Lifecycle rule"); a rule with a tag or size filter
/// cannot hold the action (`validate` refuses it) and is never applied to uploads. Between
/// rules due at the same instant, the first listed wins.
pub fn upload_abort(config: &Configuration, u: &UploadFacts, clock: Clock) -> Option<Due> {
    let mut best: Option<Due> = None;
    for rule in &config.rules {
        let Some(days) = rule.abort_incomplete_upload_days else {
            continue;
        };
        let f = &rule.filter;
        let selects = rule.enabled
            && u.key.starts_with(f.prefix.as_str())
            && f.tags.is_empty()
            && f.size_greater_than.is_none()
            && f.size_less_than.is_none();
        if !selects {
            continue;
        }
        let at_ns = clock.days_after(u.initiated_ns, days);
        if best.as_ref().is_none_or(|b| at_ns < b.at_ns) {
            best = Some(Due {
                action: Action::AbortUpload,
                rule_id: rule.id.clone(),
                at_ns,
            });
        }
    }
    best
}

/// AWS's precedence, lowest first: permanent deletion, transition, delete marker creation.
fn rank(action: &Action, v: &VersionFacts) -> u8 {
    match action {
        Action::DeleteNoncurrent | Action::DeleteMarker => 0,
        Action::ExpireCurrent if !v.versioned => 0,
        Action::Transition { .. } => 1,
        Action::ExpireCurrent => 2,
        Action::AbortUpload => 3,
    }
}

mod matching;
mod plan;
#[cfg(test)]
mod tests;
