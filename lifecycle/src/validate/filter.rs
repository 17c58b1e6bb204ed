//! A rule's filter: its content against the XML form it came in, its values, and how S3's
//! messages write it.

use super::{err, malformed, ValidationError, MAX_PREFIX_BYTES, MAX_SIZE_BOUND};
use crate::model::{Filter, FilterForm};
use std::collections::BTreeSet;

/// The filter's form against its content, then its values.
pub(super) fn check_filter(f: &Filter) -> Result<(), ValidationError> {
    let has_prefix = !f.prefix.is_empty();
    let has_tags = !f.tags.is_empty();
    let has_gt = f.size_greater_than.is_some();
    let has_lt = f.size_less_than.is_some();
    // LifecycleRuleFilter: "exactly one of Prefix, Tag, ObjectSizeGreaterThan,
    // ObjectSizeLessThan, or And"; S3 answers MalformedXML to two predicates outside And.
    let fits = match f.form {
        FilterForm::Empty => !has_prefix && !has_tags && !has_gt && !has_lt,
        FilterForm::LegacyPrefix | FilterForm::Prefix => !has_tags && !has_gt && !has_lt,
        FilterForm::Tag => f.tags.len() == 1 && !has_prefix && !has_gt && !has_lt,
        FilterForm::SizeGreaterThan => has_gt && !has_prefix && !has_tags && !has_lt,
        FilterForm::SizeLessThan => has_lt && !has_prefix && !has_tags && !has_gt,
        // "two or more predicates": S3 refused an And of a prefix alone. An empty prefix
        // beside one other predicate was accepted, and the model cannot tell an empty
        // prefix from none, so one tag or size bound is enough.
        FilterForm::And => has_tags || has_gt || has_lt,
    };
    if !fits {
        return Err(malformed(&format!(
            "the {} filter holds {}; a Filter has exactly one of Prefix, Tag, \
             ObjectSizeGreaterThan, ObjectSizeLessThan, or And (with two or more predicates)",
            form_name(f.form),
            describe(f),
        )));
    }
    if f.prefix.len() > MAX_PREFIX_BYTES {
        return Err(err(
            "InvalidArgument",
            format!("Rule prefix cannot be longer than maximum allowed key length of {MAX_PREFIX_BYTES}"),
        ));
    }
    let mut keys = BTreeSet::new();
    for (key, _) in &f.tags {
        if key.is_empty() {
            return Err(malformed("a Tag's Key must not be empty"));
        }
        if !keys.insert(key.as_str()) {
            return Err(err("InvalidRequest", "Duplicate Tag Keys are not allowed."));
        }
    }
    if let Some(lt) = f.size_less_than {
        if !(1..=MAX_SIZE_BOUND).contains(&lt) {
            return Err(err(
                "InvalidRequest",
                format!("'ObjectSizeLessThan' should be between 1 and {MAX_SIZE_BOUND}."),
            ));
        }
        if f.size_greater_than.is_some_and(|gt| gt >= lt) {
            return Err(err(
                "InvalidArgument",
                "'ObjectSizeLessThan' has to be a value greater than 'ObjectSizeGreaterThan'.",
            ));
        }
    }
    Ok(())
}

pub(super) fn has_size(f: &Filter) -> bool {
    f.size_greater_than.is_some() || f.size_less_than.is_some()
}

/// A filter as S3's messages write it: `(prefix=logs/)`, `(prefix=a/ and
/// objectsizelessthan=120)`; the empty filter is `(prefix=)`.
pub(super) fn aws_filter(f: &Filter) -> String {
    let mut parts = Vec::new();
    if !f.prefix.is_empty() || f.form == FilterForm::LegacyPrefix || f.form == FilterForm::Prefix {
        parts.push(format!("prefix={}", f.prefix));
    }
    for (key, value) in &f.tags {
        parts.push(format!("tag={{key={key}, value={value}}}"));
    }
    if let Some(gt) = f.size_greater_than {
        parts.push(format!("objectsizegreaterthan={gt}"));
    }
    if let Some(lt) = f.size_less_than {
        parts.push(format!("objectsizelessthan={lt}"));
    }
    if parts.is_empty() {
        return "(prefix=)".to_owned();
    }
    format!("({})", parts.join(" and "))
}

fn describe(f: &Filter) -> String {
    let mut parts = Vec::new();
    if !f.prefix.is_empty() {
        parts.push("a Prefix".to_owned());
    }
    if !f.tags.is_empty() {
        parts.push(format!("{} Tag(s)", f.tags.len()));
    }
    if f.size_greater_than.is_some() {
        parts.push("ObjectSizeGreaterThan".to_owned());
    }
    if f.size_less_than.is_some() {
        parts.push("ObjectSizeLessThan".to_owned());
    }
    if parts.is_empty() {
        return "nothing".to_owned();
    }
    parts.join(", ")
}

fn form_name(form: FilterForm) -> &'static str {
    match form {
        FilterForm::Empty => "empty",
        FilterForm::LegacyPrefix => "rule-level Prefix",
        FilterForm::Prefix => "<Prefix>",
        FilterForm::Tag => "<Tag>",
        FilterForm::SizeGreaterThan => "<ObjectSizeGreaterThan>",
        FilterForm::SizeLessThan => "<ObjectSizeLessThan>",
        FilterForm::And => "<And>",
    }
}
