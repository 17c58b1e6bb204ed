//! A bucket's replication configuration (S3's `ReplicationConfiguration`, V1 and V2 rules),
//! its validation as AWS validates it, and which targets a change goes to. Pure: no I/O.
//!
//! Rule choice follows AWS: every enabled rule whose filter matches applies, and among rules
//! naming the same destination the one with the highest `Priority` decides (S3 User Guide,
//! "Replication configuration file elements").

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use storage::ReplicationOp;

/// Bucket config entry holding the configuration (JSON of [`Configuration`]).
pub const CONFIG_KEY: &str = "replication";

/// AWS's limit on rules per configuration.
pub const MAX_RULES: usize = 1000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Configuration {
    /// The IAM role AWS would assume; kept and returned, not used.
    pub role: String,
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    /// V2 rules' priority; `None` for a V1 rule (a top-level `Prefix`, no `Filter`).
    pub priority: Option<i32>,
    pub enabled: bool,
    pub filter: Filter,
    /// The destination bucket's ARN: a registered target's.
    pub destination: String,
    /// The storage class replicas are written with (`None`: the target's default).
    pub storage_class: Option<String>,
    /// Whether delete markers replicate (`DeleteMarkerReplication`; always on for V1 rules).
    pub delete_markers: bool,
    /// Whether versions written before the rule replicate (`ExistingObjectReplication`, as
    /// MinIO reads it; AWS uses batch jobs), through the start-up scan and `resync`.
    pub existing_objects: bool,
}

impl Rule {
    pub fn is_v1(&self) -> bool {
        self.priority.is_none()
    }
}

/// Which keys a rule covers: a key prefix and tags that must all be present.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    pub prefix: String,
    pub tags: Vec<(String, String)>,
}

impl Filter {
    pub fn matches(&self, key: &str, tags: &BTreeMap<String, String>) -> bool {
        key.starts_with(&self.prefix)
            && self
                .tags
                .iter()
                .all(|(k, v)| tags.get(k).is_some_and(|t| t == v))
    }
}

/// A validation failure: the S3 error code and AWS's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub message: String,
}

fn invalid(code: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        code,
        message: message.into(),
    }
}

/// The parts of a Strata target ARN, `arn:strata:replication::<id>:<bucket>`.
pub fn parse_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:strata:replication::")?;
    let (id, bucket) = rest.split_once(':')?;
    (!id.is_empty() && !bucket.is_empty()).then_some((id, bucket))
}

impl Configuration {
    /// Checks the rules as AWS does (the wording of its errors where known).
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.rules.is_empty() {
            return Err(invalid(
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our published schema: a replication configuration needs at least one Rule",
            ));
        }
        if self.rules.len() > MAX_RULES {
            return Err(invalid(
                "InvalidRequest",
                "Number of defined replication rules cannot exceed 1000",
            ));
        }
        let v1 = self.rules.iter().filter(|r| r.is_v1()).count();
        if v1 > 0 && v1 < self.rules.len() {
            return Err(invalid(
                "InvalidRequest",
                "Rules of both versions of the replication configuration schema (with and without Filter) cannot be mixed",
            ));
        }
        let mut ids = std::collections::HashSet::new();
        let mut priorities = std::collections::HashSet::new();
        for rule in &self.rules {
            if rule.id.chars().count() > 255 {
                return Err(invalid(
                    "InvalidArgument",
                    "The ID of a rule is at most 255 characters",
                ));
            }
            if !ids.insert(rule.id.as_str()) {
                return Err(invalid("InvalidArgument", "Rule Id must be unique."));
            }
            if parse_arn(&rule.destination).is_none() {
                return Err(invalid("InvalidArgument", "Invalid bucket ARN."));
            }
            if let Some(class) = &rule.storage_class {
                if !tiering::config::BUILT_IN_CLASSES.contains(&class.as_str()) {
                    return Err(invalid(
                        "InvalidStorageClass",
                        format!("The storage class you specified is not valid: {class}"),
                    ));
                }
            }
            match rule.priority {
                Some(p) if p < 0 => {
                    return Err(invalid(
                        "InvalidRequest",
                        "Priority must be between 0 and 2147483647.",
                    ))
                }
                Some(p) => {
                    if !priorities.insert((rule.destination.as_str(), p)) {
                        return Err(invalid(
                            "InvalidRequest",
                            format!("Found duplicate priority {p}."),
                        ));
                    }
                    if rule.delete_markers && !rule.filter.tags.is_empty() {
                        return Err(invalid(
                            "InvalidRequest",
                            "Delete marker replication is not supported if any Tag filter is specified. Please refer to S3 Developer Guide for more information.",
                        ));
                    }
                }
                None => {}
            }
        }
        if v1 > 0 {
            let destinations: std::collections::HashSet<_> =
                self.rules.iter().map(|r| r.destination.as_str()).collect();
            if destinations.len() > 1 {
                return Err(invalid(
                    "InvalidRequest",
                    "Number of distinct destination bucket ARNs cannot exceed 1",
                ));
            }
        }
        Ok(())
    }

    /// The destination ARNs of every rule.
    pub fn destinations(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.rules.iter().map(|r| r.destination.as_str()).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The rule that decides for `key` (with `tags`) towards each destination: the matching
    /// enabled rule with the highest priority.
    pub fn deciding_rules(&self, key: &str, tags: &BTreeMap<String, String>) -> Vec<&Rule> {
        let mut best: BTreeMap<&str, &Rule> = BTreeMap::new();
        for rule in self
            .rules
            .iter()
            .filter(|r| r.enabled && r.filter.matches(key, tags))
        {
            let slot = best.entry(rule.destination.as_str()).or_insert(rule);
            if rule.priority > slot.priority {
                *slot = rule;
            }
        }
        best.into_values().collect()
    }

    /// The destinations `op` on a version of `key` with `tags` must reach. Delete markers go
    /// only where the deciding rule has DeleteMarkerReplication (a marker has no tags, so a
    /// tag-filtered rule never covers one); version deletes where `version_deletes` allows.
    pub fn targets_for(
        &self,
        key: &str,
        tags: &BTreeMap<String, String>,
        op: ReplicationOp,
        version_deletes: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        self.deciding_rules(key, tags)
            .into_iter()
            .filter(|r| match op {
                ReplicationOp::Object | ReplicationOp::Metadata => true,
                ReplicationOp::DeleteMarker => r.delete_markers || r.is_v1(),
                ReplicationOp::VersionDelete => version_deletes(&r.destination),
            })
            .map(|r| r.destination.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "arn:strata:replication::a1:dst";
    const B: &str = "arn:strata:replication::b2:other";

    fn rule(id: &str, priority: Option<i32>, prefix: &str, dest: &str) -> Rule {
        Rule {
            id: id.into(),
            priority,
            enabled: true,
            filter: Filter {
                prefix: prefix.into(),
                tags: vec![],
            },
            destination: dest.into(),
            storage_class: None,
            delete_markers: false,
            existing_objects: false,
        }
    }

    fn config(rules: Vec<Rule>) -> Configuration {
        Configuration {
            role: String::new(),
            rules,
        }
    }

    fn code(c: Configuration) -> &'static str {
        c.validate().unwrap_err().code
    }

    #[test]
    fn validation_follows_aws() {
        assert!(config(vec![rule("r", Some(1), "", A)]).validate().is_ok());
        assert_eq!(code(config(vec![])), "MalformedXML");
        assert_eq!(
            code(config(vec![
                rule("r", Some(1), "", A),
                rule("r", Some(2), "", A)
            ])),
            "InvalidArgument",
            "duplicate ids"
        );
        let dup = config(vec![rule("a", Some(1), "x", A), rule("b", Some(1), "y", A)]);
        assert_eq!(
            dup.validate().unwrap_err().message,
            "Found duplicate priority 1."
        );
        assert!(
            config(vec![rule("a", Some(1), "x", A), rule("b", Some(1), "y", B)])
                .validate()
                .is_ok(),
            "priorities are unique per destination"
        );
        assert_eq!(
            code(config(vec![rule("r", Some(1), "", "arn:aws:s3:::x")])),
            "InvalidArgument"
        );
        assert_eq!(
            code(config(vec![rule(&"i".repeat(256), Some(1), "", A)])),
            "InvalidArgument"
        );
        let mut tagged = rule("t", Some(1), "", A);
        tagged.filter.tags.push(("k".into(), "v".into()));
        tagged.delete_markers = true;
        assert!(config(vec![tagged])
            .validate()
            .unwrap_err()
            .message
            .starts_with("Delete marker replication is not supported if any Tag filter"));
        assert_eq!(
            code(config(vec![rule("a", None, "", A), rule("b", None, "", B)])),
            "InvalidRequest",
            "V1: one destination"
        );
        assert_eq!(
            code(config(vec![
                rule("a", None, "", A),
                rule("b", Some(1), "", A)
            ])),
            "InvalidRequest",
            "V1 and V2 rules do not mix"
        );
        let mut class = rule("c", Some(1), "", A);
        class.storage_class = Some("PLATINUM".into());
        assert_eq!(code(config(vec![class])), "InvalidStorageClass");
        let many = (0..1001)
            .map(|i| rule(&i.to_string(), Some(i), "", A))
            .collect();
        assert_eq!(code(config(many)), "InvalidRequest");
    }

    #[test]
    fn the_highest_priority_rule_decides_per_destination() {
        let mut low = rule("low", Some(1), "", A);
        low.delete_markers = true;
        let high = rule("high", Some(5), "logs/", A);
        let c = config(vec![low, high, rule("other", Some(1), "logs/", B)]);
        let none = BTreeMap::new();
        let ids: Vec<&str> = c
            .deciding_rules("logs/x", &none)
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids, ["high", "other"]);
        // The deciding rule for logs/ has no DeleteMarkerReplication; elsewhere it does.
        let no = |_: &str| false;
        assert!(c
            .targets_for("logs/x", &none, ReplicationOp::DeleteMarker, no)
            .is_empty());
        assert_eq!(
            c.targets_for("a", &none, ReplicationOp::DeleteMarker, no),
            [A]
        );
        assert_eq!(c.targets_for("a", &none, ReplicationOp::Object, no), [A]);
        assert!(c
            .targets_for("a", &none, ReplicationOp::VersionDelete, no)
            .is_empty());
        assert_eq!(
            c.targets_for("a", &none, ReplicationOp::VersionDelete, |t| t == A),
            [A]
        );
    }

    #[test]
    fn filters_need_the_prefix_and_every_tag() {
        let f = Filter {
            prefix: "p/".into(),
            tags: vec![("a".into(), "1".into()), ("b".into(), "2".into())],
        };
        let tags: BTreeMap<String, String> =
            [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        assert!(f.matches("p/x", &tags));
        assert!(!f.matches("q/x", &tags));
        let mut fewer = tags.clone();
        fewer.remove("b");
        assert!(!f.matches("p/x", &fewer));
        let mut disabled = rule("d", Some(1), "", A);
        disabled.enabled = false;
        assert!(config(vec![disabled])
            .targets_for("k", &tags, ReplicationOp::Object, |_| false)
            .is_empty());
    }

    #[test]
    fn arns_name_a_target_and_a_bucket() {
        assert_eq!(parse_arn(A), Some(("a1", "dst")));
        assert_eq!(parse_arn("arn:aws:s3:::dst"), None);
        assert_eq!(parse_arn("arn:strata:replication:::dst"), None);
    }
}
