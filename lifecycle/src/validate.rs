//! AWS's rules for a lifecycle configuration, checked at PUT time so that a stored
//! configuration can always be applied.
//!
//! Codes and messages are S3's where S3's answer is on record: the API reference
//! (PutBucketLifecycleConfiguration, LifecycleRule, LifecycleExpiration,
//! NoncurrentVersionExpiration, Transition), the user guide ("Lifecycle configuration
//! elements", "Adding filters to Lifecycle rules") and S3's answers as quoted by users and
//! other S3 implementations' tests. Each message ends with the rule's ID so the user can find
//! the rule among up to 1,000.

use crate::model::{Configuration, FilterForm, Rule, MAX_RULES};
use actions::{
    check_abort, check_expiration, check_noncurrent_expiration, check_noncurrent_transitions,
    check_transitions,
};
use filter::{aws_filter, check_filter, has_size};
use std::collections::BTreeSet;

/// A configuration AWS would refuse: the S3 error code (`MalformedXML`, `InvalidArgument`,
/// `InvalidRequest`, `InvalidStorageClass`) and a message naming the rule and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    pub code: &'static str,
    pub message: String,
}

/// Longest rule ID, in characters (AWS: "ID length is limited to 255 characters").
const MAX_ID_CHARS: usize = 255;
/// Longest prefix, in bytes: an object key's limit, so a longer prefix could select nothing.
const MAX_PREFIX_BYTES: usize = 1024;
/// Largest `ObjectSizeLessThan` S3 accepts (its message: "'ObjectSizeLessThan' should be
/// between 1 and 1099511627776000.").
const MAX_SIZE_BOUND: u64 = 1_099_511_627_776_000;
/// Most noncurrent versions a rule may keep (AWS: "between 1 and 100").
const MAX_NEWER_NONCURRENT: u32 = 100;

const MALFORMED: &str =
    "The XML you provided was not well-formed or did not validate against our published schema";

/// Checks a configuration; `is_tier` says whether a storage class names a configured remote
/// tier (transitions to anything else are refused with InvalidStorageClass).
///
/// Rule IDs are checked as given: the S3 front gives a rule sent without an ID its generated
/// one before calling this. Besides AWS's value checks, the filter's content must fit its
/// form (`<Filter><Prefix>` holds only a prefix, `<And>` at least one tag or size bound, and
/// so on), `MalformedXML` otherwise. Overlapping filters are allowed, as AWS allows them,
/// except between rules of the legacy form (a rule-level `<Prefix>`), where S3 refuses two
/// overlapping prefixes with the same action.
pub fn validate(
    config: &Configuration,
    is_tier: &dyn Fn(&str) -> bool,
) -> Result<(), ValidationError> {
    // S3 answered MalformedXML for both counts (its schema bounds the rules); the messages
    // are those of its error table.
    if config.rules.is_empty() {
        return Err(err(
            "MalformedXML",
            "At least one lifecycle rule must be specified.",
        ));
    }
    if config.rules.len() > MAX_RULES {
        return Err(err(
            "MalformedXML",
            format!("The number of lifecycle rules must not exceed the allowed limit of {MAX_RULES} rules."),
        ));
    }
    for rule in &config.rules {
        check_rule(rule, is_tier).map_err(|e| e.naming(rule))?;
    }
    let mut ids = BTreeSet::new();
    for rule in &config.rules {
        if !ids.insert(rule.id.as_str()) {
            return Err(err(
                "InvalidArgument",
                "Rule ID must be unique. Found same ID for more than one rule",
            )
            .naming(rule));
        }
    }
    check_legacy(config)
}

impl ValidationError {
    fn naming(mut self, rule: &Rule) -> Self {
        self.message = format!("{} (rule ID '{}')", self.message, rule.id);
        self
    }
}

fn err(code: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        code,
        message: message.into(),
    }
}

fn malformed(why: &str) -> ValidationError {
    err("MalformedXML", format!("{MALFORMED}: {why}"))
}

fn check_rule(rule: &Rule, is_tier: &dyn Fn(&str) -> bool) -> Result<(), ValidationError> {
    if rule.id.chars().count() > MAX_ID_CHARS {
        return Err(err(
            "InvalidArgument",
            format!("ID length should not exceed allowed limit of {MAX_ID_CHARS}"),
        ));
    }
    check_filter(&rule.filter)?;
    if rule.expiration.is_none()
        && rule.noncurrent_expiration.is_none()
        && rule.abort_incomplete_upload_days.is_none()
        && rule.transitions.is_empty()
        && rule.noncurrent_transitions.is_empty()
    {
        return Err(err(
            "InvalidRequest",
            "At least one action needs to be specified in a rule",
        ));
    }
    check_expiration(rule)?;
    check_noncurrent_expiration(rule)?;
    check_abort(rule)?;
    check_transitions(rule, is_tier)?;
    check_noncurrent_transitions(rule, is_tier)
}

/// Legacy (V1) configurations, whose rules put `<Prefix>` in the rule: S3 refuses mixing
/// them with `<Filter>` rules, and two V1 rules whose prefixes overlap with an action of the
/// same type ("Found overlapping prefixes '' and 'a' for same action type 'Expiration'").
fn check_legacy(config: &Configuration) -> Result<(), ValidationError> {
    let legacy = |r: &Rule| r.filter.form == FilterForm::LegacyPrefix;
    let first_is_legacy = legacy(&config.rules[0]);
    if let Some(odd) = config.rules.iter().find(|r| legacy(r) != first_is_legacy) {
        let message = if first_is_legacy {
            "Filter element can only be used in Lifecycle V2."
        } else {
            "Base level prefix cannot be used in Lifecycle V2, prefixes are only supported in the Filter."
        };
        return Err(err("InvalidRequest", message).naming(odd));
    }
    if !first_is_legacy {
        return Ok(());
    }
    for (i, a) in config.rules.iter().enumerate() {
        for b in &config.rules[i + 1..] {
            let (pa, pb) = (&a.filter.prefix, &b.filter.prefix);
            if !pa.starts_with(pb.as_str()) && !pb.starts_with(pa.as_str()) {
                continue;
            }
            let kinds = action_kinds(a);
            if let Some(kind) = action_kinds(b).into_iter().find(|k| kinds.contains(k)) {
                return Err(err(
                    "InvalidRequest",
                    format!("Found overlapping prefixes '{pa}' and '{pb}' for same action type '{kind}'"),
                )
                .naming(b));
            }
        }
    }
    Ok(())
}

/// The XML action elements a rule holds.
fn action_kinds(rule: &Rule) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if rule.expiration.is_some() {
        kinds.push("Expiration");
    }
    if !rule.transitions.is_empty() {
        kinds.push("Transition");
    }
    if rule.noncurrent_expiration.is_some() {
        kinds.push("NoncurrentVersionExpiration");
    }
    if !rule.noncurrent_transitions.is_empty() {
        kinds.push("NoncurrentVersionTransition");
    }
    if rule.abort_incomplete_upload_days.is_some() {
        kinds.push("AbortIncompleteMultipartUpload");
    }
    kinds
}

mod actions;
mod filter;
#[cfg(test)]
mod tests;
