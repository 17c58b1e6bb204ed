use super::*;
use crate::model::{
    Configuration, Expiration, Filter, FilterForm, NoncurrentExpiration, NoncurrentTransition,
    Rule, Transition, When,
};

const DAY_S: i64 = 86_400;
/// 2030-01-01T00:00:00Z.
const MIDNIGHT: i64 = 1_893_456_000;

fn tiers(class: &str) -> bool {
    matches!(class, "WARM" | "COLD")
}

fn check(rules: Vec<Rule>) -> Result<(), ValidationError> {
    validate(
        &Configuration {
            rules,
            ..Default::default()
        },
        &tiers,
    )
}

/// The error's code, asserting the message holds `text`.
fn code(rules: Vec<Rule>, text: &str) -> &'static str {
    let e = check(rules).expect_err("refused");
    assert!(e.message.contains(text), "{:?} lacks {text:?}", e.message);
    e.code
}

fn rule(id: &str) -> Rule {
    Rule {
        id: id.to_owned(),
        enabled: true,
        expiration: Some(Expiration::Days(30)),
        ..Rule::default()
    }
}

fn bare(id: &str) -> Rule {
    Rule {
        expiration: None,
        ..rule(id)
    }
}

fn with_filter(rule: Rule, filter: Filter) -> Rule {
    Rule { filter, ..rule }
}

fn prefix(p: &str) -> Filter {
    Filter {
        prefix: p.to_owned(),
        form: FilterForm::Prefix,
        ..Filter::default()
    }
}

fn legacy(p: &str) -> Filter {
    Filter {
        prefix: p.to_owned(),
        form: FilterForm::LegacyPrefix,
        ..Filter::default()
    }
}

fn tag(k: &str, v: &str) -> Filter {
    Filter {
        tags: vec![(k.to_owned(), v.to_owned())],
        form: FilterForm::Tag,
        ..Filter::default()
    }
}

fn size_lt(lt: u64) -> Filter {
    Filter {
        size_less_than: Some(lt),
        form: FilterForm::SizeLessThan,
        ..Filter::default()
    }
}

fn size_gt(gt: u64) -> Filter {
    Filter {
        size_greater_than: Some(gt),
        form: FilterForm::SizeGreaterThan,
        ..Filter::default()
    }
}

fn and(prefix: &str, tags: &[(&str, &str)], gt: Option<u64>, lt: Option<u64>) -> Filter {
    Filter {
        prefix: prefix.to_owned(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        size_greater_than: gt,
        size_less_than: lt,
        form: FilterForm::And,
    }
}

fn transitions(rule: Rule, steps: &[(When, &str)]) -> Rule {
    Rule {
        transitions: steps
            .iter()
            .map(|(when, class)| Transition {
                when: when.clone(),
                storage_class: (*class).to_owned(),
            })
            .collect(),
        ..rule
    }
}

fn noncurrent_transitions(rule: Rule, steps: &[(u32, &str)]) -> Rule {
    Rule {
        noncurrent_transitions: steps
            .iter()
            .map(|(days, class)| NoncurrentTransition {
                days: *days,
                newer_noncurrent_versions: None,
                storage_class: (*class).to_owned(),
            })
            .collect(),
        ..rule
    }
}

fn noncurrent(rule: Rule, days: u32, keep: Option<u32>) -> Rule {
    Rule {
        noncurrent_expiration: Some(NoncurrentExpiration {
            days,
            newer_noncurrent_versions: keep,
        }),
        ..rule
    }
}

fn expiring(rule: Rule, expiration: Option<Expiration>) -> Rule {
    Rule { expiration, ..rule }
}

fn aborting(rule: Rule, days: u32) -> Rule {
    Rule {
        abort_incomplete_upload_days: Some(days),
        ..rule
    }
}

// ---- what is accepted ------------------------------------------------------------------------

#[test]
fn accepts_every_element_in_a_valid_configuration() {
    let full = Rule {
        id: "full".into(),
        enabled: true,
        filter: and(
            "logs/",
            &[("env", "prod"), ("team", "a")],
            Some(0),
            Some(1 << 30),
        ),
        expiration: Some(Expiration::Days(365)),
        noncurrent_expiration: Some(NoncurrentExpiration {
            days: 90,
            newer_noncurrent_versions: Some(3),
        }),
        abort_incomplete_upload_days: None,
        transitions: vec![
            Transition {
                when: When::Days(0),
                storage_class: "WARM".into(),
            },
            Transition {
                when: When::Days(90),
                storage_class: "COLD".into(),
            },
        ],
        noncurrent_transitions: vec![
            NoncurrentTransition {
                days: 0,
                newer_noncurrent_versions: Some(1),
                storage_class: "WARM".into(),
            },
            NoncurrentTransition {
                days: 30,
                newer_noncurrent_versions: Some(100),
                storage_class: "COLD".into(),
            },
        ],
    };
    let rules = vec![
        full,
        with_filter(
            expiring(bare("marker"), Some(Expiration::ExpiredObjectDeleteMarker)),
            prefix("a/"),
        ),
        with_filter(aborting(bare("abort"), 7), prefix("")),
        with_filter(
            expiring(rule("date"), Some(Expiration::Date(MIDNIGHT))),
            tag("k", ""),
        ),
        with_filter(rule("gt"), size_gt(0)),
        with_filter(rule("lt"), size_lt(1)),
        Rule {
            enabled: false,
            ..rule("disabled")
        },
    ];
    assert_eq!(check(rules), Ok(()));
}

#[test]
fn accepts_overlapping_filters_with_the_same_action() {
    // The user guide's conflict examples: overlapping filters are resolved at evaluation.
    let rules = vec![
        rule("all"),
        with_filter(rule("logs"), prefix("logs/")),
        with_filter(rule("logs-again"), prefix("logs/")),
        with_filter(rule("tagged"), and("logs/", &[("a", "b")], None, None)),
    ];
    assert_eq!(check(rules), Ok(()));
}

#[test]
fn accepts_a_thousand_rules() {
    let rules: Vec<Rule> = (0..1000).map(|i| rule(&format!("r{i}"))).collect();
    assert_eq!(check(rules), Ok(()));
}

#[test]
fn accepts_an_id_of_255_characters_counted_as_characters() {
    assert_eq!(check(vec![rule(&"é".repeat(255))]), Ok(()));
}

#[test]
fn accepts_transitions_ending_before_expiration_and_zero_day_transitions() {
    let r = transitions(
        rule("r"),
        &[(When::Days(0), "WARM"), (When::Days(29), "COLD")],
    );
    assert_eq!(check(vec![r]), Ok(()));
    let by_date = transitions(
        expiring(rule("d"), Some(Expiration::Date(MIDNIGHT + DAY_S))),
        &[(When::Date(MIDNIGHT), "COLD")],
    );
    assert_eq!(check(vec![by_date]), Ok(()));
}

#[test]
fn accepts_a_transition_and_a_noncurrent_transition_to_one_class() {
    let r = noncurrent_transitions(
        transitions(rule("r"), &[(When::Days(1), "COLD")]),
        &[(1, "COLD")],
    );
    assert_eq!(check(vec![r]), Ok(()));
}

#[test]
fn accepts_expired_object_delete_marker_beside_transitions() {
    let r = transitions(
        expiring(bare("r"), Some(Expiration::ExpiredObjectDeleteMarker)),
        &[(When::Days(400), "COLD")],
    );
    assert_eq!(check(vec![r]), Ok(()));
}

#[test]
fn accepts_dates_at_midnight_before_the_epoch() {
    assert_eq!(
        check(vec![expiring(rule("r"), Some(Expiration::Date(-DAY_S)))]),
        Ok(())
    );
}

#[test]
fn accepts_legacy_rules_whose_prefixes_do_not_overlap_or_whose_actions_differ() {
    let rules = vec![
        with_filter(rule("a"), legacy("a/")),
        with_filter(rule("b"), legacy("b/")),
        with_filter(aborting(bare("a-abort"), 1), legacy("a/")),
        with_filter(noncurrent(bare("all-noncurrent"), 1, None), legacy("")),
    ];
    assert_eq!(check(rules), Ok(()));
}

// ---- rule count and IDs ----------------------------------------------------------------------

#[test]
fn refuses_no_rules() {
    assert_eq!(
        code(vec![], "At least one lifecycle rule must be specified"),
        "MalformedXML"
    );
}

#[test]
fn refuses_more_than_a_thousand_rules() {
    let rules: Vec<Rule> = (0..1001).map(|i| rule(&format!("r{i}"))).collect();
    assert_eq!(
        code(rules, "must not exceed the allowed limit of 1000 rules"),
        "MalformedXML"
    );
}

#[test]
fn refuses_an_id_over_255_characters() {
    let id = "x".repeat(256);
    assert_eq!(
        code(
            vec![rule(&id)],
            "ID length should not exceed allowed limit of 255"
        ),
        "InvalidArgument"
    );
}

#[test]
fn refuses_duplicate_ids() {
    let e = check(vec![rule("same"), rule("other"), rule("same")]).unwrap_err();
    assert_eq!(e.code, "InvalidArgument");
    assert_eq!(
        e.message,
        "Rule ID must be unique. Found same ID for more than one rule (rule ID 'same')"
    );
}

// ---- actions ---------------------------------------------------------------------------------

#[test]
fn refuses_a_rule_without_an_action() {
    assert_eq!(
        code(
            vec![rule("ok"), bare("empty")],
            "At least one action needs to be specified in a rule"
        ),
        "InvalidRequest"
    );
}

#[test]
fn refuses_expiration_days_zero() {
    let r = expiring(bare("r"), Some(Expiration::Days(0)));
    assert_eq!(
        code(
            vec![r],
            "'Days' for Expiration action must be a positive integer"
        ),
        "InvalidArgument"
    );
}

#[test]
fn refuses_an_expiration_date_not_at_midnight() {
    for off in [1, DAY_S / 2, DAY_S - 1, -1] {
        let r = expiring(bare("r"), Some(Expiration::Date(MIDNIGHT + off)));
        assert_eq!(
            code(vec![r], "'Date' must be at midnight GMT"),
            "InvalidArgument",
            "{off}"
        );
    }
}

#[test]
fn refuses_noncurrent_days_zero() {
    let r = noncurrent(bare("r"), 0, None);
    assert_eq!(
        code(
            vec![r],
            "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer"
        ),
        "InvalidArgument"
    );
}

#[test]
fn refuses_newer_noncurrent_versions_outside_1_to_100() {
    let zero = noncurrent(bare("r"), 1, Some(0));
    assert_eq!(
        code(vec![zero], "'NewerNoncurrentVersions' for NoncurrentVersionExpiration action must be a positive integer"),
        "InvalidArgument"
    );
    let many = noncurrent(bare("r"), 1, Some(101));
    assert_eq!(code(vec![many], "between 1 and 100"), "InvalidArgument");
    assert_eq!(check(vec![noncurrent(bare("r"), 1, Some(100))]), Ok(()));
    assert_eq!(check(vec![noncurrent(bare("r"), 1, Some(1))]), Ok(()));
}

#[test]
fn refuses_newer_noncurrent_versions_of_a_noncurrent_transition_outside_1_to_100() {
    for keep in [0, 101] {
        let mut r = noncurrent_transitions(bare("r"), &[(1, "COLD")]);
        r.noncurrent_transitions[0].newer_noncurrent_versions = Some(keep);
        assert_eq!(
            code(vec![r], "for NoncurrentVersionTransition action"),
            "InvalidArgument"
        );
    }
}

#[test]
fn refuses_newer_noncurrent_versions_in_a_legacy_rule() {
    let r = with_filter(noncurrent(bare("r"), 1, Some(2)), legacy("a/"));
    assert_eq!(
        code(
            vec![r],
            "NewerNoncurrentVersions element can only be used in Lifecycle V2."
        ),
        "InvalidRequest"
    );
    let mut t = with_filter(
        noncurrent_transitions(bare("t"), &[(1, "COLD")]),
        legacy("a/"),
    );
    t.noncurrent_transitions[0].newer_noncurrent_versions = Some(2);
    assert_eq!(
        code(vec![t], "can only be used in Lifecycle V2"),
        "InvalidRequest"
    );
}

#[test]
fn refuses_expired_object_delete_marker_with_tags_or_sizes() {
    let marker = || expiring(bare("r"), Some(Expiration::ExpiredObjectDeleteMarker));
    assert_eq!(
        code(
            vec![with_filter(marker(), tag("k", "v"))],
            "ExpiredObjectDeleteMarker cannot be specified with Tags."
        ),
        "InvalidRequest"
    );
    assert_eq!(
        code(
            vec![with_filter(marker(), and("a/", &[("k", "v")], None, None))],
            "with Tags."
        ),
        "InvalidRequest"
    );
    assert_eq!(
        code(
            vec![with_filter(marker(), size_lt(10))],
            "ExpiredObjectDeleteMarker cannot be specified with Object Size."
        ),
        "InvalidRequest"
    );
    assert_eq!(
        code(
            vec![with_filter(marker(), size_gt(10))],
            "with Object Size."
        ),
        "InvalidRequest"
    );
}

#[test]
fn refuses_abort_days_zero() {
    let r = aborting(bare("r"), 0);
    assert_eq!(
        code(vec![r], "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer"),
        "InvalidArgument"
    );
}

#[test]
fn refuses_abort_with_tags_or_sizes() {
    assert_eq!(
        code(
            vec![with_filter(aborting(bare("r"), 1), tag("k", "v"))],
            "AbortIncompleteMultipartUpload cannot be specified with Tags."
        ),
        "InvalidRequest"
    );
    assert_eq!(
        code(
            vec![with_filter(
                aborting(bare("r"), 1),
                and("p/", &[], Some(1), Some(5))
            )],
            "AbortIncompleteMultipartUpload cannot be specified with Object Size."
        ),
        "InvalidRequest"
    );
}

// ---- transitions -----------------------------------------------------------------------------

#[test]
fn refuses_a_transition_to_a_class_that_is_not_a_tier() {
    let r = transitions(rule("r"), &[(When::Days(1), "GLACIER")]);
    assert_eq!(
        code(vec![r], "The storage class you specified is not valid"),
        "InvalidStorageClass"
    );
    let n = noncurrent_transitions(bare("n"), &[(1, "STANDARD")]);
    assert_eq!(
        code(vec![n], "'STANDARD' is not a configured tier"),
        "InvalidStorageClass"
    );
}

#[test]
fn refuses_a_transition_date_not_at_midnight() {
    let r = transitions(bare("r"), &[(When::Date(MIDNIGHT + 3600), "COLD")]);
    assert_eq!(
        code(vec![r], "'Date' must be at midnight GMT"),
        "InvalidArgument"
    );
}

#[test]
fn refuses_mixed_days_and_date_transitions() {
    let r = with_filter(
        transitions(
            bare("r"),
            &[(When::Days(1), "WARM"), (When::Date(MIDNIGHT), "COLD")],
        ),
        prefix("logs/"),
    );
    assert_eq!(
        code(
            vec![r],
            "Found mixed 'Date' and 'Days' based Transition actions in lifecycle rule for filter '(prefix=logs/)'"
        ),
        "InvalidRequest"
    );
}

#[test]
fn refuses_two_transitions_to_one_class() {
    let r = transitions(
        bare("r"),
        &[(When::Days(1), "COLD"), (When::Days(2), "COLD")],
    );
    assert_eq!(
        code(vec![r], "'StorageClass' must be different for 'Transition' actions in same 'Rule' with filter '(prefix=)'"),
        "InvalidRequest"
    );
    let n = noncurrent_transitions(bare("n"), &[(1, "COLD"), (2, "COLD")]);
    assert_eq!(
        code(
            vec![n],
            "'StorageClass' must be different for 'NoncurrentVersionTransition' actions"
        ),
        "InvalidRequest"
    );
}

#[test]
fn refuses_two_transitions_at_one_time() {
    let r = transitions(
        bare("r"),
        &[(When::Days(5), "WARM"), (When::Days(5), "COLD")],
    );
    assert_eq!(
        code(
            vec![r],
            "'Days' in the Transition action for StorageClass 'COLD' for filter '(prefix=)' must be greater \
             than 'Days' in the Transition action for StorageClass 'WARM'"
        ),
        "InvalidArgument"
    );
    let dates = transitions(
        bare("d"),
        &[
            (When::Date(MIDNIGHT), "WARM"),
            (When::Date(MIDNIGHT), "COLD"),
        ],
    );
    assert_eq!(
        code(vec![dates], "'Date' in the Transition action"),
        "InvalidArgument"
    );
    let n = noncurrent_transitions(bare("n"), &[(5, "WARM"), (5, "COLD")]);
    assert_eq!(
        code(
            vec![n],
            "'NoncurrentDays' in the NoncurrentVersionTransition action"
        ),
        "InvalidArgument"
    );
}

#[test]
fn refuses_an_expiration_not_after_the_transitions() {
    for days in [10, 5] {
        let r = transitions(
            expiring(bare("r"), Some(Expiration::Days(days))),
            &[(When::Days(1), "WARM"), (When::Days(10), "COLD")],
        );
        assert_eq!(
            code(
                vec![r],
                "'Days' in the Expiration action for filter '(prefix=)' must be greater than 'Days' in the \
                 Transition action"
            ),
            "InvalidArgument"
        );
    }
    let by_date = transitions(
        expiring(bare("d"), Some(Expiration::Date(MIDNIGHT))),
        &[(When::Date(MIDNIGHT), "COLD")],
    );
    assert_eq!(
        code(
            vec![by_date],
            "'Date' in the Expiration action for filter '(prefix=)' must be greater than 'Date'"
        ),
        "InvalidArgument"
    );
}

#[test]
fn refuses_mixed_days_and_date_between_expiration_and_transitions() {
    let days_then_date = transitions(rule("a"), &[(When::Date(MIDNIGHT), "COLD")]);
    assert_eq!(
        code(
            vec![days_then_date],
            "Found mixed 'Date' and 'Days' based Expiration and Transition actions in lifecycle rule for filter"
        ),
        "InvalidRequest"
    );
    let date_then_days = transitions(
        expiring(bare("b"), Some(Expiration::Date(MIDNIGHT))),
        &[(When::Days(1), "COLD")],
    );
    assert_eq!(
        code(vec![date_then_days], "Found mixed 'Date' and 'Days'"),
        "InvalidRequest"
    );
}

#[test]
fn refuses_noncurrent_expiration_not_after_noncurrent_transitions() {
    let r = noncurrent_transitions(noncurrent(bare("r"), 30, None), &[(30, "COLD")]);
    assert_eq!(
        code(
            vec![r],
            "'NoncurrentDays' in the NoncurrentVersionExpiration action for filter '(prefix=)' must be greater \
             than 'NoncurrentDays' in the NoncurrentVersionTransition action"
        ),
        "InvalidArgument"
    );
    let ok = noncurrent_transitions(noncurrent(bare("r"), 31, None), &[(30, "COLD")]);
    assert_eq!(check(vec![ok]), Ok(()));
}

// ---- filters -----------------------------------------------------------------------------------

#[test]
fn refuses_a_prefix_longer_than_a_key() {
    assert_eq!(
        check(vec![with_filter(rule("r"), prefix(&"p".repeat(1024)))]),
        Ok(())
    );
    let r = with_filter(rule("r"), prefix(&"p".repeat(1025)));
    assert_eq!(
        code(vec![r], "maximum allowed key length of 1024"),
        "InvalidArgument"
    );
}

#[test]
fn refuses_duplicate_tag_keys() {
    let r = with_filter(rule("r"), and("", &[("k", "1"), ("k", "2")], None, None));
    assert_eq!(
        code(vec![r], "Duplicate Tag Keys are not allowed."),
        "InvalidRequest"
    );
}

#[test]
fn refuses_an_empty_tag_key() {
    let r = with_filter(rule("r"), tag("", "v"));
    assert_eq!(
        code(vec![r], "a Tag's Key must not be empty"),
        "MalformedXML"
    );
}

#[test]
fn refuses_a_size_range_that_selects_nothing() {
    for (gt, lt) in [(10, 10), (11, 10)] {
        let r = with_filter(rule("r"), and("", &[], Some(gt), Some(lt)));
        assert_eq!(
            code(
                vec![r],
                "'ObjectSizeLessThan' has to be a value greater than 'ObjectSizeGreaterThan'."
            ),
            "InvalidArgument"
        );
    }
}

#[test]
fn refuses_object_size_less_than_outside_its_range() {
    for lt in [0, MAX_SIZE_BOUND + 1] {
        let r = with_filter(rule("r"), size_lt(lt));
        assert_eq!(
            code(
                vec![r],
                "'ObjectSizeLessThan' should be between 1 and 1099511627776000."
            ),
            "InvalidRequest"
        );
    }
    assert_eq!(
        check(vec![with_filter(rule("r"), size_lt(MAX_SIZE_BOUND))]),
        Ok(())
    );
}

#[test]
fn refuses_a_filter_whose_content_does_not_fit_its_form() {
    let misfits = [
        Filter {
            prefix: "a/".into(),
            ..Filter::default()
        },
        Filter {
            tags: vec![("k".into(), "v".into())],
            form: FilterForm::Prefix,
            ..Filter::default()
        },
        Filter {
            size_less_than: Some(5),
            form: FilterForm::LegacyPrefix,
            ..Filter::default()
        },
        Filter {
            tags: vec![("a".into(), "1".into()), ("b".into(), "2".into())],
            form: FilterForm::Tag,
            ..Filter::default()
        },
        Filter {
            prefix: "a/".into(),
            ..tag("k", "v")
        },
        Filter {
            form: FilterForm::Tag,
            ..Filter::default()
        },
        Filter {
            size_less_than: Some(5),
            ..size_gt(1)
        },
        Filter {
            form: FilterForm::SizeLessThan,
            ..Filter::default()
        },
        Filter {
            prefix: "a/".into(),
            ..size_lt(5)
        },
        and("only-a-prefix/", &[], None, None),
        and("", &[], None, None),
    ];
    for f in misfits {
        let r = with_filter(rule("r"), f.clone());
        assert_eq!(
            code(vec![r], "a Filter has exactly one of"),
            "MalformedXML",
            "{f:?}"
        );
    }
}

#[test]
fn accepts_an_and_of_one_tag_or_one_size_bound() {
    // S3 accepted an And of an empty Prefix and one other predicate; the model cannot tell
    // an empty Prefix from none.
    assert_eq!(
        check(vec![with_filter(
            rule("t"),
            and("", &[("k", "v")], None, None)
        )]),
        Ok(())
    );
    assert_eq!(
        check(vec![with_filter(rule("s"), and("a/", &[], None, Some(9)))]),
        Ok(())
    );
}

// ---- legacy (V1) configurations --------------------------------------------------------------------

#[test]
fn refuses_legacy_and_filter_rules_together() {
    let legacy_first = vec![
        with_filter(rule("old"), legacy("a/")),
        with_filter(rule("new"), prefix("b/")),
    ];
    let e = check(legacy_first).unwrap_err();
    assert_eq!(e.code, "InvalidRequest");
    assert_eq!(
        e.message,
        "Filter element can only be used in Lifecycle V2. (rule ID 'new')"
    );
    let filter_first = vec![rule("new"), with_filter(rule("old"), legacy("a/"))];
    assert_eq!(
        code(filter_first, "Base level prefix cannot be used in Lifecycle V2, prefixes are only supported in the Filter."),
        "InvalidRequest"
    );
}

#[test]
fn refuses_overlapping_legacy_prefixes_with_one_action_type() {
    let rules = vec![
        with_filter(rule("all"), legacy("")),
        with_filter(rule("a"), legacy("a")),
    ];
    let e = check(rules).unwrap_err();
    assert_eq!(e.code, "InvalidRequest");
    assert_eq!(
        e.message,
        "Found overlapping prefixes '' and 'a' for same action type 'Expiration' (rule ID 'a')"
    );
    let transitions_overlap = vec![
        with_filter(
            transitions(bare("x"), &[(When::Days(1), "COLD")]),
            legacy("logs/2024"),
        ),
        with_filter(
            transitions(bare("y"), &[(When::Days(5), "WARM")]),
            legacy("logs/"),
        ),
    ];
    assert_eq!(
        code(
            transitions_overlap,
            "Found overlapping prefixes 'logs/2024' and 'logs/' for same action type 'Transition'"
        ),
        "InvalidRequest"
    );
}

// ---- messages --------------------------------------------------------------------------------------

#[test]
fn every_rule_error_names_its_rule() {
    let bad_rules = vec![
        bare("no-action"),
        expiring(bare("days-0"), Some(Expiration::Days(0))),
        with_filter(
            rule("bad-tags"),
            and("", &[("k", "1"), ("k", "2")], None, None),
        ),
        transitions(bare("bad-class"), &[(When::Days(1), "NOPE")]),
    ];
    for r in bad_rules {
        let id = r.id.clone();
        let e = check(vec![rule("fine"), r]).unwrap_err();
        assert!(
            e.message.ends_with(&format!("(rule ID '{id}')")),
            "{:?}",
            e.message
        );
    }
}

#[test]
fn the_first_bad_rule_is_reported() {
    let e = check(vec![
        rule("ok"),
        bare("first"),
        expiring(bare("second"), Some(Expiration::Days(0))),
    ])
    .unwrap_err();
    assert!(e.message.contains("'first'"), "{:?}", e.message);
}

#[test]
fn filters_are_written_as_s3_writes_them() {
    assert_eq!(aws_filter(&Filter::default()), "(prefix=)");
    assert_eq!(aws_filter(&prefix("")), "(prefix=)");
    assert_eq!(aws_filter(&legacy("logs/")), "(prefix=logs/)");
    assert_eq!(aws_filter(&size_gt(5)), "(objectsizegreaterthan=5)");
    assert_eq!(
        aws_filter(&and("a/", &[("k", "v")], Some(1), Some(9))),
        "(prefix=a/ and tag={key=k, value=v} and objectsizegreaterthan=1 and objectsizelessthan=9)"
    );
}
