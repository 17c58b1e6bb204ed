//! The actions of one rule: their values, and how transitions line up with each other and
//! with the expirations.

use super::{aws_filter, err, has_size, ValidationError, MAX_NEWER_NONCURRENT};
use crate::model::{Expiration, FilterForm, Rule, When};
use std::collections::BTreeSet;

pub(super) fn check_expiration(rule: &Rule) -> Result<(), ValidationError> {
    let f = &rule.filter;
    match rule.expiration {
        Some(Expiration::Days(0)) => Err(err(
            "InvalidArgument",
            "'Days' for Expiration action must be a positive integer",
        )),
        Some(Expiration::Date(secs)) => midnight(secs),
        // A delete marker has no tags, and AWS refuses the size filter the same way
        // ("ExpiredObjectDeleteMarker cannot be specified with Object Size.").
        Some(Expiration::ExpiredObjectDeleteMarker) if !f.tags.is_empty() => Err(err(
            "InvalidRequest",
            "ExpiredObjectDeleteMarker cannot be specified with Tags.",
        )),
        Some(Expiration::ExpiredObjectDeleteMarker) if has_size(f) => Err(err(
            "InvalidRequest",
            "ExpiredObjectDeleteMarker cannot be specified with Object Size.",
        )),
        _ => Ok(()),
    }
}

pub(super) fn check_noncurrent_expiration(rule: &Rule) -> Result<(), ValidationError> {
    let Some(nc) = &rule.noncurrent_expiration else {
        return Ok(());
    };
    if nc.days == 0 {
        return Err(err(
            "InvalidArgument",
            "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer",
        ));
    }
    check_newer_noncurrent(
        rule,
        nc.newer_noncurrent_versions,
        "NoncurrentVersionExpiration",
    )
}

/// `NewerNoncurrentVersions`: 1 to 100, and only with a `<Filter>` (AWS: "If you don't
/// specify a Filter element, Amazon S3 generates an InvalidRequest error when you specify
/// the number of noncurrent versions to retain").
fn check_newer_noncurrent(
    rule: &Rule,
    keep: Option<u32>,
    action: &str,
) -> Result<(), ValidationError> {
    let Some(keep) = keep else {
        return Ok(());
    };
    if keep == 0 {
        return Err(err(
            "InvalidArgument",
            format!("'NewerNoncurrentVersions' for {action} action must be a positive integer"),
        ));
    }
    if keep > MAX_NEWER_NONCURRENT {
        return Err(err(
            "InvalidArgument",
            format!(
                "'NewerNoncurrentVersions' for {action} action must be an integer between 1 and \
                 {MAX_NEWER_NONCURRENT}"
            ),
        ));
    }
    if rule.filter.form == FilterForm::LegacyPrefix {
        return Err(err(
            "InvalidRequest",
            "NewerNoncurrentVersions element can only be used in Lifecycle V2.",
        ));
    }
    Ok(())
}

/// AWS: "You can't specify this lifecycle action in a rule that has a filter that uses
/// object tags"; uploads have neither tags nor a final size.
pub(super) fn check_abort(rule: &Rule) -> Result<(), ValidationError> {
    let Some(days) = rule.abort_incomplete_upload_days else {
        return Ok(());
    };
    if days == 0 {
        return Err(err(
            "InvalidArgument",
            "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer",
        ));
    }
    if !rule.filter.tags.is_empty() {
        return Err(err(
            "InvalidRequest",
            "AbortIncompleteMultipartUpload cannot be specified with Tags.",
        ));
    }
    if has_size(&rule.filter) {
        return Err(err(
            "InvalidRequest",
            "AbortIncompleteMultipartUpload cannot be specified with Object Size.",
        ));
    }
    Ok(())
}

/// Transitions of current versions: a tier, a midnight, one of Days or Date for all of
/// them and the expiration, one class once, steps at distinct times, all before the
/// expiration.
pub(super) fn check_transitions(
    rule: &Rule,
    is_tier: &dyn Fn(&str) -> bool,
) -> Result<(), ValidationError> {
    let filter = aws_filter(&rule.filter);
    for t in &rule.transitions {
        tier(&t.storage_class, is_tier)?;
        if let When::Date(secs) = t.when {
            midnight(secs)?;
        }
    }
    let by_date = rule
        .transitions
        .iter()
        .any(|t| matches!(t.when, When::Date(_)));
    let by_days = rule
        .transitions
        .iter()
        .any(|t| matches!(t.when, When::Days(_)));
    if by_date && by_days {
        return Err(err(
            "InvalidRequest",
            format!("Found mixed 'Date' and 'Days' based Transition actions in lifecycle rule for filter '{filter}'"),
        ));
    }
    distinct_classes(
        rule.transitions.iter().map(|t| t.storage_class.as_str()),
        "Transition",
        &filter,
    )?;
    let field = if by_date { "Date" } else { "Days" };
    let steps: Vec<(i64, &str)> = rule
        .transitions
        .iter()
        .map(|t| match t.when {
            When::Days(days) => (i64::from(days), t.storage_class.as_str()),
            When::Date(secs) => (secs, t.storage_class.as_str()),
        })
        .collect();
    distinct_times(&steps, field, "Transition", &filter)?;
    let Some(&(last, _)) = steps.iter().max_by_key(|s| s.0) else {
        return Ok(());
    };
    let expires = match rule.expiration {
        Some(Expiration::Days(days)) => (i64::from(days), "Days"),
        Some(Expiration::Date(secs)) => (secs, "Date"),
        Some(Expiration::ExpiredObjectDeleteMarker) | None => return Ok(()),
    };
    if expires.1 != field {
        return Err(err(
            "InvalidRequest",
            format!(
                "Found mixed 'Date' and 'Days' based Expiration and Transition actions in lifecycle \
                 rule for filter '{filter}'"
            ),
        ));
    }
    if expires.0 <= last {
        return Err(err(
            "InvalidArgument",
            format!(
                "'{field}' in the Expiration action for filter '{filter}' must be greater than \
                 '{field}' in the Transition action"
            ),
        ));
    }
    Ok(())
}

pub(super) fn check_noncurrent_transitions(
    rule: &Rule,
    is_tier: &dyn Fn(&str) -> bool,
) -> Result<(), ValidationError> {
    let filter = aws_filter(&rule.filter);
    for t in &rule.noncurrent_transitions {
        tier(&t.storage_class, is_tier)?;
        check_newer_noncurrent(
            rule,
            t.newer_noncurrent_versions,
            "NoncurrentVersionTransition",
        )?;
    }
    distinct_classes(
        rule.noncurrent_transitions
            .iter()
            .map(|t| t.storage_class.as_str()),
        "NoncurrentVersionTransition",
        &filter,
    )?;
    let steps: Vec<(i64, &str)> = rule
        .noncurrent_transitions
        .iter()
        .map(|t| (i64::from(t.days), t.storage_class.as_str()))
        .collect();
    distinct_times(
        &steps,
        "NoncurrentDays",
        "NoncurrentVersionTransition",
        &filter,
    )?;
    let (Some(nc), Some(last)) = (&rule.noncurrent_expiration, steps.iter().map(|s| s.0).max())
    else {
        return Ok(());
    };
    if i64::from(nc.days) <= last {
        return Err(err(
            "InvalidArgument",
            format!(
                "'NoncurrentDays' in the NoncurrentVersionExpiration action for filter '{filter}' \
                 must be greater than 'NoncurrentDays' in the NoncurrentVersionTransition action"
            ),
        ));
    }
    Ok(())
}

fn tier(storage_class: &str, is_tier: &dyn Fn(&str) -> bool) -> Result<(), ValidationError> {
    if is_tier(storage_class) {
        return Ok(());
    }
    Err(err(
        "InvalidStorageClass",
        format!(
            "The storage class you specified is not valid: '{storage_class}' is not a configured \
             tier"
        ),
    ))
}

fn distinct_classes<'a>(
    classes: impl Iterator<Item = &'a str>,
    action: &str,
    filter: &str,
) -> Result<(), ValidationError> {
    let mut seen = BTreeSet::new();
    for class in classes {
        if !seen.insert(class) {
            return Err(err(
                "InvalidRequest",
                format!("'StorageClass' must be different for '{action}' actions in same 'Rule' with filter '{filter}'"),
            ));
        }
    }
    Ok(())
}

/// AWS orders a rule's transitions by storage class and wants each colder class strictly
/// later. Tiers have no order known here, so two steps at the same time are refused: neither
/// could ever be the one that applies.
fn distinct_times(
    steps: &[(i64, &str)],
    field: &str,
    action: &str,
    filter: &str,
) -> Result<(), ValidationError> {
    for (i, (at, class)) in steps.iter().enumerate() {
        if let Some((_, earlier)) = steps[..i].iter().find(|(t, _)| t == at) {
            return Err(err(
                "InvalidArgument",
                format!(
                    "'{field}' in the {action} action for StorageClass '{class}' for filter \
                     '{filter}' must be greater than '{field}' in the {action} action for \
                     StorageClass '{earlier}' for filter '{filter}'"
                ),
            ));
        }
    }
    Ok(())
}

/// AWS: "The time is always midnight UTC" (real midnight, whatever the lifecycle day).
fn midnight(secs: i64) -> Result<(), ValidationError> {
    if secs.rem_euclid(86_400) == 0 {
        return Ok(());
    }
    Err(err("InvalidArgument", "'Date' must be at midnight GMT"))
}
