//! Whether a rule's status and filter select a version, and if not, the first reason why.

use super::{Verdict, VersionFacts};
use crate::model::{Filter, Rule};

/// Why a rule does not apply to a version (`None`: it applies).
///
/// A delete marker carries no tags, so a tag filter never selects one, whatever `v.tags`
/// says (AWS refuses ExpiredObjectDeleteMarker in a rule with a tag filter). It has size 0
/// for the size bounds: `ObjectSizeLessThan` selects it and `ObjectSizeGreaterThan` never
/// does (AWS's own example removes "noncurrent delete marker objects" with
/// `ObjectSizeLessThan` 1, "Examples of S3 Lifecycle configurations",
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-configuration-examples.html>).
pub(super) fn exclusion(rule: &Rule, v: &VersionFacts) -> Option<Verdict> {
    if !rule.enabled {
        return Some(Verdict::Disabled);
    }
    filter_exclusion(&rule.filter, v)
}

fn filter_exclusion(f: &Filter, v: &VersionFacts) -> Option<Verdict> {
    if !v.key.starts_with(f.prefix.as_str()) {
        return Some(Verdict::PrefixDiffers {
            prefix: f.prefix.clone(),
        });
    }
    for (key, value) in &f.tags {
        let carried = !v.is_delete_marker && v.tags.get(key) == Some(value);
        if !carried {
            return Some(Verdict::TagMissing {
                key: key.clone(),
                value: value.clone(),
            });
        }
    }
    let size = if v.is_delete_marker { 0 } else { v.size };
    if let Some(greater_than) = f.size_greater_than {
        if size <= greater_than {
            return Some(Verdict::TooSmall { greater_than });
        }
    }
    if let Some(less_than) = f.size_less_than {
        if size >= less_than {
            return Some(Verdict::TooLarge { less_than });
        }
    }
    None
}
