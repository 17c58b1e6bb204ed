use super::*;
use crate::model::{
    Configuration, Expiration, Filter, FilterForm, NoncurrentExpiration, NoncurrentTransition,
    Rule, Transition, When,
};
use std::collections::BTreeMap;

const S: i64 = 1_000_000_000;
const REAL: Clock = Clock { day_ns: DAY_NS };
/// The 2-second day the acceptance checks run with.
const SHORT: Clock = Clock { day_ns: 2 * S };

/// ns since the epoch of a UTC civil time (days from civil, proleptic Gregorian).
fn utc(y: i64, m: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + h * 3600 + mi * 60 + s) * S
}

/// Midnight UTC starting that day, in ns.
fn day(y: i64, m: i64, d: i64) -> i64 {
    utc(y, m, d, 0, 0, 0)
}

/// An owned version, lent out as `VersionFacts`.
#[derive(Clone, Debug)]
struct V {
    key: String,
    size: u64,
    tags: BTreeMap<String, String>,
    mod_time_ns: i64,
    is_latest: bool,
    is_delete_marker: bool,
    noncurrent_since_ns: Option<i64>,
    newer_noncurrent: u32,
    only_version: bool,
    locked_until_ns: Option<i64>,
    versioned: bool,
    storage_class: String,
}

impl V {
    /// The only version of a key in an unversioned bucket.
    fn current(key: &str, mod_time_ns: i64) -> V {
        V {
            key: key.to_owned(),
            size: 100,
            tags: BTreeMap::new(),
            mod_time_ns,
            is_latest: true,
            is_delete_marker: false,
            noncurrent_since_ns: None,
            newer_noncurrent: 0,
            only_version: true,
            locked_until_ns: None,
            versioned: false,
            storage_class: "STANDARD".to_owned(),
        }
    }

    /// A noncurrent version in a versioned bucket, replaced at `since`, with `newer`
    /// noncurrent versions newer than it.
    fn noncurrent(key: &str, mod_time_ns: i64, since: i64, newer: u32) -> V {
        V {
            is_latest: false,
            noncurrent_since_ns: Some(since),
            newer_noncurrent: newer,
            only_version: false,
            versioned: true,
            ..V::current(key, mod_time_ns)
        }
    }

    /// The current delete marker of a key in a versioned bucket.
    fn marker(key: &str, mod_time_ns: i64, only_version: bool) -> V {
        V {
            size: 0,
            is_delete_marker: true,
            only_version,
            versioned: true,
            ..V::current(key, mod_time_ns)
        }
    }

    fn size(self, size: u64) -> V {
        V { size, ..self }
    }

    fn tag(mut self, k: &str, v: &str) -> V {
        self.tags.insert(k.to_owned(), v.to_owned());
        self
    }

    fn versioned(self, versioned: bool) -> V {
        V {
            versioned,
            only_version: !versioned && self.only_version,
            ..self
        }
    }

    fn locked(self, until: i64) -> V {
        V {
            locked_until_ns: Some(until),
            ..self
        }
    }

    fn class(self, class: &str) -> V {
        V {
            storage_class: class.to_owned(),
            ..self
        }
    }

    fn facts(&self) -> VersionFacts<'_> {
        VersionFacts {
            key: &self.key,
            size: self.size,
            tags: &self.tags,
            mod_time_ns: self.mod_time_ns,
            is_latest: self.is_latest,
            is_delete_marker: self.is_delete_marker,
            noncurrent_since_ns: self.noncurrent_since_ns,
            newer_noncurrent: self.newer_noncurrent,
            only_version: self.only_version,
            locked_until_ns: self.locked_until_ns,
            versioned: self.versioned,
            storage_class: &self.storage_class,
        }
    }
}

fn rule(id: &str) -> Rule {
    Rule {
        id: id.to_owned(),
        enabled: true,
        ..Rule::default()
    }
}

fn expire_days(id: &str, days: u32) -> Rule {
    Rule {
        expiration: Some(Expiration::Days(days)),
        ..rule(id)
    }
}

fn expire_date(id: &str, midnight_ns: i64) -> Rule {
    Rule {
        expiration: Some(Expiration::Date(midnight_ns / S)),
        ..rule(id)
    }
}

fn expire_marker(id: &str) -> Rule {
    Rule {
        expiration: Some(Expiration::ExpiredObjectDeleteMarker),
        ..rule(id)
    }
}

fn noncurrent(id: &str, days: u32, keep: Option<u32>) -> Rule {
    Rule {
        noncurrent_expiration: Some(NoncurrentExpiration {
            days,
            newer_noncurrent_versions: keep,
        }),
        ..rule(id)
    }
}

fn transition(id: &str, steps: &[(When, &str)]) -> Rule {
    Rule {
        transitions: steps
            .iter()
            .map(|(when, class)| Transition {
                when: when.clone(),
                storage_class: (*class).to_owned(),
            })
            .collect(),
        ..rule(id)
    }
}

fn noncurrent_transition(id: &str, days: u32, keep: Option<u32>, class: &str) -> Rule {
    Rule {
        noncurrent_transitions: vec![NoncurrentTransition {
            days,
            newer_noncurrent_versions: keep,
            storage_class: class.to_owned(),
        }],
        ..rule(id)
    }
}

fn abort(id: &str, days: u32) -> Rule {
    Rule {
        abort_incomplete_upload_days: Some(days),
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

fn tags(pairs: &[(&str, &str)]) -> Filter {
    Filter {
        tags: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        form: if pairs.len() == 1 {
            FilterForm::Tag
        } else {
            FilterForm::And
        },
        ..Filter::default()
    }
}

fn sizes(greater_than: Option<u64>, less_than: Option<u64>) -> Filter {
    Filter {
        size_greater_than: greater_than,
        size_less_than: less_than,
        form: FilterForm::And,
        ..Filter::default()
    }
}

fn disabled(rule: Rule) -> Rule {
    Rule {
        enabled: false,
        ..rule
    }
}

fn cfg(rules: Vec<Rule>) -> Configuration {
    Configuration {
        rules,
        ..Default::default()
    }
}

fn d(action: Action, rule_id: &str, at_ns: i64) -> Due {
    Due {
        action,
        rule_id: rule_id.to_owned(),
        at_ns,
    }
}

fn to(class: &str) -> Action {
    Action::Transition {
        storage_class: class.to_owned(),
    }
}

// ---- the civil-time helper itself -------------------------------------------------------

#[test]
fn utc_helper_matches_known_instants() {
    assert_eq!(utc(1970, 1, 1, 0, 0, 0), 0);
    assert_eq!(day(2000, 1, 1), 946_684_800 * S);
    assert_eq!(day(2028, 2, 29), 1_835_395_200 * S);
    assert_eq!(day(1969, 12, 31), -86_400 * S);
}

// ---- Clock::days_after ------------------------------------------------------------------

#[test]
fn days_after_matches_aws_worked_example() {
    // intro-lifecycle-rules: created 1/15/2014 10:30 UTC, 3 days -> 1/19/2014 00:00 UTC.
    assert_eq!(
        REAL.days_after(utc(2014, 1, 15, 10, 30, 0), 3),
        day(2014, 1, 19)
    );
}

#[test]
fn days_after_matches_aws_troubleshooting_example() {
    // Created 00:05 UTC on January 2, one day old at 00:05 on January 3, due January 4.
    assert_eq!(
        REAL.days_after(utc(2024, 1, 2, 0, 5, 0), 1),
        day(2024, 1, 4)
    );
}

#[test]
fn days_after_a_second_before_midnight() {
    assert_eq!(
        REAL.days_after(utc(2023, 12, 31, 23, 59, 59), 1),
        day(2024, 1, 2)
    );
}

#[test]
fn days_after_exactly_midnight_stays_on_midnight() {
    assert_eq!(REAL.days_after(day(2024, 1, 1), 1), day(2024, 1, 2));
    assert_eq!(REAL.days_after(day(2024, 1, 1), 30), day(2024, 1, 31));
}

#[test]
fn days_after_a_second_after_midnight() {
    assert_eq!(
        REAL.days_after(utc(2024, 1, 1, 0, 0, 1), 1),
        day(2024, 1, 3)
    );
}

#[test]
fn days_after_a_nanosecond_after_midnight_rounds_up() {
    assert_eq!(REAL.days_after(day(2024, 1, 1) + 1, 1), day(2024, 1, 3));
    assert_eq!(REAL.days_after(day(2024, 1, 1) - 1, 1), day(2024, 1, 2));
}

#[test]
fn days_after_zero_days_is_the_next_midnight() {
    assert_eq!(REAL.days_after(day(2024, 6, 1), 0), day(2024, 6, 1));
    assert_eq!(
        REAL.days_after(utc(2024, 6, 1, 10, 0, 0), 0),
        day(2024, 6, 2)
    );
}

#[test]
fn days_after_crosses_leap_days() {
    assert_eq!(
        REAL.days_after(utc(2028, 2, 28, 10, 0, 0), 1),
        day(2028, 3, 1)
    );
    assert_eq!(REAL.days_after(day(2028, 2, 28), 1), day(2028, 2, 29));
    assert_eq!(
        REAL.days_after(utc(2028, 2, 29, 12, 0, 0), 1),
        day(2028, 3, 2)
    );
    assert_eq!(
        REAL.days_after(utc(2027, 2, 28, 12, 0, 0), 1),
        day(2027, 3, 2)
    );
    // Century rules: 2100 has no February 29, 2000 had one.
    assert_eq!(
        REAL.days_after(utc(2100, 2, 28, 12, 0, 0), 1),
        day(2100, 3, 2)
    );
    assert_eq!(
        REAL.days_after(utc(2000, 2, 28, 12, 0, 0), 1),
        day(2000, 3, 1)
    );
}

#[test]
fn days_after_crosses_year_ends() {
    assert_eq!(
        REAL.days_after(utc(2027, 12, 31, 12, 0, 0), 1),
        day(2028, 1, 2)
    );
    assert_eq!(
        REAL.days_after(utc(2028, 12, 31, 23, 59, 59), 0),
        day(2029, 1, 1)
    );
    // 2028 has 366 days, 2027 has 365.
    assert_eq!(REAL.days_after(day(2028, 1, 1), 365), day(2028, 12, 31));
    assert_eq!(REAL.days_after(day(2027, 1, 1), 365), day(2028, 1, 1));
}

#[test]
fn days_after_before_the_epoch() {
    assert_eq!(
        REAL.days_after(utc(1969, 12, 30, 12, 0, 0), 1),
        day(1970, 1, 1)
    );
    assert_eq!(REAL.days_after(-S, 0), 0);
    assert_eq!(REAL.days_after(day(1969, 12, 31), 0), day(1969, 12, 31));
}

#[test]
fn days_after_with_a_two_second_day() {
    assert_eq!(SHORT.days_after(3 * S, 1), 6 * S);
    assert_eq!(SHORT.days_after(4 * S, 1), 6 * S);
    assert_eq!(SHORT.days_after(4 * S + 1, 1), 8 * S);
    assert_eq!(SHORT.days_after(0, 0), 0);
    assert_eq!(SHORT.days_after(1, 0), 2 * S);
    assert_eq!(SHORT.days_after(1_000 * S + S / 2, 3), 1_008 * S);
}

#[test]
fn days_after_saturates() {
    assert_eq!(REAL.days_after(i64::MAX - 5, 1), i64::MAX);
    assert_eq!(REAL.days_after(i64::MAX, u32::MAX), i64::MAX);
    // The earliest instant rounds up to the first midnight after it.
    assert_eq!(REAL.days_after(i64::MIN, 0), i64::MIN / DAY_NS * DAY_NS);
}

#[test]
fn days_after_reads_a_non_positive_day_as_a_real_one() {
    let t = utc(2024, 1, 1, 10, 0, 0);
    assert_eq!(Clock { day_ns: 0 }.days_after(t, 1), day(2024, 1, 3));
    assert_eq!(Clock { day_ns: -5 }.days_after(t, 1), day(2024, 1, 3));
}

#[test]
fn default_clock_is_a_real_day() {
    assert_eq!(Clock::default(), REAL);
}

// ---- filters ---------------------------------------------------------------------------

fn verdict(rule: Rule, v: &V) -> Verdict {
    explain(&cfg(vec![rule]), &v.facts(), REAL)
        .remove(0)
        .verdict
}

fn applies(rule: Rule, v: &V) -> bool {
    matches!(verdict(rule, v), Verdict::Applies(_))
}

#[test]
fn prefix_filter_matches_keys_that_start_with_it() {
    let r = with_filter(expire_days("r", 1), prefix("logs/"));
    assert!(applies(r.clone(), &V::current("logs/a", 0)));
    assert!(applies(r.clone(), &V::current("logs/", 0)));
    for key in ["log", "Logs/a", "other/logs/a", ""] {
        assert_eq!(
            verdict(r.clone(), &V::current(key, 0)),
            Verdict::PrefixDiffers {
                prefix: "logs/".into()
            },
            "{key}"
        );
    }
}

#[test]
fn empty_filter_and_empty_prefix_match_every_key() {
    assert!(applies(expire_days("r", 1), &V::current("", 0)));
    assert!(applies(expire_days("r", 1), &V::current("any/key", 0)));
    assert!(applies(
        with_filter(expire_days("r", 1), prefix("")),
        &V::current("k", 0)
    ));
}

#[test]
fn tag_filter_needs_every_tag_with_its_value() {
    let r = with_filter(expire_days("r", 1), tags(&[("env", "prod"), ("team", "a")]));
    let both = V::current("k", 0).tag("env", "prod").tag("team", "a");
    assert!(applies(r.clone(), &both));
    assert!(
        applies(r.clone(), &both.clone().tag("extra", "x")),
        "additional tags do not matter"
    );
    assert_eq!(
        verdict(r.clone(), &V::current("k", 0).tag("team", "a")),
        Verdict::TagMissing {
            key: "env".into(),
            value: "prod".into()
        }
    );
    assert_eq!(
        verdict(
            r.clone(),
            &V::current("k", 0).tag("env", "prod").tag("team", "b")
        ),
        Verdict::TagMissing {
            key: "team".into(),
            value: "a".into()
        }
    );
    assert_eq!(
        verdict(r, &V::current("k", 0)),
        Verdict::TagMissing {
            key: "env".into(),
            value: "prod".into()
        },
        "the first missing tag in the filter's order is named"
    );
}

#[test]
fn tag_values_match_exactly() {
    let r = with_filter(expire_days("r", 1), tags(&[("env", "prod")]));
    assert!(!applies(r.clone(), &V::current("k", 0).tag("env", "Prod")));
    assert!(!applies(r.clone(), &V::current("k", 0).tag("env", "prod ")));
    assert!(!applies(r, &V::current("k", 0).tag("ENV", "prod")));
    // A tag given with no value selects objects whose tag has no value, only those.
    let empty = with_filter(expire_days("r", 1), tags(&[("flag", "")]));
    assert!(applies(empty.clone(), &V::current("k", 0).tag("flag", "")));
    assert!(!applies(empty, &V::current("k", 0).tag("flag", "x")));
}

#[test]
fn size_bounds_are_exclusive() {
    let gt = with_filter(expire_days("r", 1), sizes(Some(100), None));
    assert_eq!(
        verdict(gt.clone(), &V::current("k", 0).size(100)),
        Verdict::TooSmall { greater_than: 100 }
    );
    assert_eq!(
        verdict(gt.clone(), &V::current("k", 0).size(0)),
        Verdict::TooSmall { greater_than: 100 }
    );
    assert!(applies(gt, &V::current("k", 0).size(101)));
    let lt = with_filter(expire_days("r", 1), sizes(None, Some(100)));
    assert_eq!(
        verdict(lt.clone(), &V::current("k", 0).size(100)),
        Verdict::TooLarge { less_than: 100 }
    );
    assert!(applies(lt.clone(), &V::current("k", 0).size(99)));
    assert!(applies(lt, &V::current("k", 0).size(0)));
}

#[test]
fn size_range_selects_between_its_bounds() {
    let r = with_filter(expire_days("r", 1), sizes(Some(10), Some(20)));
    assert_eq!(
        verdict(r.clone(), &V::current("k", 0).size(10)),
        Verdict::TooSmall { greater_than: 10 }
    );
    assert!(applies(r.clone(), &V::current("k", 0).size(11)));
    assert!(applies(r.clone(), &V::current("k", 0).size(19)));
    assert_eq!(
        verdict(r, &V::current("k", 0).size(20)),
        Verdict::TooLarge { less_than: 20 }
    );
}

#[test]
fn and_filter_needs_every_part() {
    let f = Filter {
        prefix: "docs/".into(),
        tags: vec![("env".into(), "prod".into())],
        size_greater_than: Some(10),
        size_less_than: Some(1000),
        form: FilterForm::And,
    };
    let r = with_filter(expire_days("r", 1), f);
    let ok = V::current("docs/a", 0).tag("env", "prod").size(500);
    assert!(applies(r.clone(), &ok));
    assert!(matches!(
        verdict(
            r.clone(),
            &V {
                key: "x".into(),
                ..ok.clone()
            }
        ),
        Verdict::PrefixDiffers { .. }
    ));
    assert!(matches!(
        verdict(r.clone(), &ok.clone().tag("env", "dev")),
        Verdict::TagMissing { .. }
    ));
    assert!(matches!(
        verdict(r.clone(), &ok.clone().size(5)),
        Verdict::TooSmall { .. }
    ));
    assert!(matches!(
        verdict(r, &ok.size(5000)),
        Verdict::TooLarge { .. }
    ));
}

#[test]
fn delete_markers_never_match_a_tag_filter() {
    let r = with_filter(expire_days("r", 1), tags(&[("env", "prod")]));
    // Even if the scanner handed over tags for a marker, a marker carries none.
    let m = V::marker("k", 0, true).tag("env", "prod");
    assert_eq!(
        verdict(r, &m),
        Verdict::TagMissing {
            key: "env".into(),
            value: "prod".into()
        }
    );
    assert!(schedule(
        &cfg(vec![with_filter(
            expire_days("r", 1),
            tags(&[("env", "prod")])
        )]),
        &m.facts(),
        REAL
    )
    .is_empty());
}

#[test]
fn delete_markers_have_size_zero_for_size_filters() {
    // AWS's example removes noncurrent delete markers with ObjectSizeLessThan 1.
    let m = V::noncurrent("k", 0, day(2024, 1, 2), 0);
    let m = V {
        is_delete_marker: true,
        size: 7,
        ..m
    };
    let lt = with_filter(noncurrent("r", 1, None), sizes(None, Some(1)));
    assert_eq!(
        schedule(&cfg(vec![lt]), &m.facts(), REAL),
        vec![d(Action::DeleteNoncurrent, "r", day(2024, 1, 3))]
    );
    let gt = with_filter(noncurrent("r", 1, None), sizes(Some(0), None));
    assert_eq!(verdict(gt, &m), Verdict::TooSmall { greater_than: 0 });
}

// ---- Expiration of current versions ----------------------------------------------------

#[test]
fn expiration_days_expires_the_current_version() {
    let v = V::current("k", utc(2024, 1, 1, 10, 0, 0));
    let c = cfg(vec![expire_days("r", 1)]);
    assert_eq!(
        schedule(&c, &v.facts(), REAL),
        vec![d(Action::ExpireCurrent, "r", day(2024, 1, 3))]
    );
    assert_eq!(due(&c, &v.facts(), REAL, day(2024, 1, 3) - 1), None);
    assert_eq!(
        due(&c, &v.facts(), REAL, day(2024, 1, 3)),
        Some(d(Action::ExpireCurrent, "r", day(2024, 1, 3)))
    );
    assert_eq!(
        due(&c, &v.facts(), REAL, day(2025, 1, 1)),
        Some(d(Action::ExpireCurrent, "r", day(2024, 1, 3))),
        "an overdue action stays due"
    );
}

#[test]
fn expiration_date_is_due_on_the_date() {
    let c = cfg(vec![expire_date("r", day(2030, 1, 1))]);
    let v = V::current("k", day(2024, 5, 5));
    assert_eq!(
        schedule(&c, &v.facts(), REAL),
        vec![d(Action::ExpireCurrent, "r", day(2030, 1, 1))]
    );
    assert_eq!(due(&c, &v.facts(), REAL, day(2030, 1, 1) - S), None);
    assert!(due(&c, &v.facts(), REAL, day(2030, 1, 1)).is_some());
}

#[test]
fn expiration_date_in_the_past_applies_to_new_objects_at_once() {
    // AWS: a date-based action "is not a one-time action"; objects created later qualify.
    let c = cfg(vec![expire_date("r", day(2020, 1, 1))]);
    let v = V::current("k", day(2024, 5, 5));
    assert_eq!(
        due(&c, &v.facts(), REAL, day(2024, 5, 5)),
        Some(d(Action::ExpireCurrent, "r", day(2020, 1, 1)))
    );
}

#[test]
fn expiration_date_ignores_the_short_clock() {
    let c = cfg(vec![expire_date("r", day(2030, 1, 1))]);
    let v = V::current("k", 3 * S);
    assert_eq!(
        schedule(&c, &v.facts(), SHORT),
        vec![d(Action::ExpireCurrent, "r", day(2030, 1, 1))]
    );
}

#[test]
fn expiration_leaves_noncurrent_versions_alone() {
    let c = cfg(vec![expire_days("r", 1), expire_date("d", day(2020, 1, 1))]);
    let v = V::noncurrent("k", 0, S, 0);
    assert!(schedule(&c, &v.facts(), REAL).is_empty());
}

#[test]
fn expiration_takes_no_action_on_a_delete_marker_with_other_versions() {
    let c = cfg(vec![
        expire_days("r", 1),
        expire_date("d", day(2020, 1, 1)),
        expire_marker("m"),
    ]);
    let m = V::marker("k", 0, false);
    assert!(schedule(&c, &m.facts(), REAL).is_empty());
    assert_eq!(due(&c, &m.facts(), REAL, i64::MAX), None);
}

#[test]
fn expiration_is_the_same_action_in_every_versioning_state() {
    let c = cfg(vec![expire_days("r", 1)]);
    for versioned in [false, true] {
        let v = V::current("k", day(2024, 1, 1)).versioned(versioned);
        assert_eq!(
            due(&c, &v.facts(), REAL, day(2024, 1, 2)),
            Some(d(Action::ExpireCurrent, "r", day(2024, 1, 2)))
        );
    }
}

#[test]
fn two_second_day_expires_an_object_within_seconds() {
    // The acceptance check: Days 1 with a 2 s day is gone well within 30 s.
    let created = 1_000 * S + S / 2;
    let c = cfg(vec![expire_days("r", 1)]);
    let v = V::current("k", created);
    let at = SHORT.days_after(created, 1);
    assert_eq!(at, 1_004 * S);
    assert_eq!(due(&c, &v.facts(), SHORT, at - 1), None);
    assert_eq!(
        due(&c, &v.facts(), SHORT, at),
        Some(d(Action::ExpireCurrent, "r", at))
    );
    assert!(at - created < 30 * S);
}

// ---- delete markers ----------------------------------------------------------------------

#[test]
fn expired_object_delete_marker_is_removed_at_once() {
    let c = cfg(vec![expire_marker("m")]);
    let t = utc(2024, 3, 3, 15, 0, 0);
    let m = V::marker("k", t, true);
    assert_eq!(
        schedule(&c, &m.facts(), REAL),
        vec![d(Action::DeleteMarker, "m", t)]
    );
    assert_eq!(
        due(&c, &m.facts(), REAL, t),
        Some(d(Action::DeleteMarker, "m", t))
    );
    assert_eq!(due(&c, &m.facts(), REAL, t - 1), None);
}

#[test]
fn expired_object_delete_marker_rule_leaves_other_versions_alone() {
    let c = cfg(vec![expire_marker("m")]);
    assert!(schedule(&c, &V::marker("k", 0, false).facts(), REAL).is_empty());
    assert!(
        schedule(&c, &V::current("k", 0).facts(), REAL).is_empty(),
        "an only version that is data"
    );
    let nc_marker = V {
        is_delete_marker: true,
        ..V::noncurrent("k", 0, S, 0)
    };
    assert!(schedule(&c, &nc_marker.facts(), REAL).is_empty());
}

#[test]
fn expiration_days_removes_expired_markers_once_old_enough() {
    // "When you specify the Days tag, Amazon S3 automatically performs
    // ExpiredObjectDeleteMarker cleanup when the delete markers are old enough".
    let c = cfg(vec![expire_days("r", 3)]);
    let t = utc(2024, 3, 3, 15, 0, 0);
    let m = V::marker("k", t, true);
    assert_eq!(
        schedule(&c, &m.facts(), REAL),
        vec![d(Action::DeleteMarker, "r", day(2024, 3, 7))]
    );
    assert_eq!(due(&c, &m.facts(), REAL, day(2024, 3, 7) - 1), None);
    assert!(due(&c, &m.facts(), REAL, day(2024, 3, 7)).is_some());
}

#[test]
fn expiration_date_removes_expired_markers_on_the_date() {
    let c = cfg(vec![expire_date("r", day(2025, 1, 1))]);
    let m = V::marker("k", day(2024, 3, 3), true);
    assert_eq!(
        schedule(&c, &m.facts(), REAL),
        vec![d(Action::DeleteMarker, "r", day(2025, 1, 1))]
    );
}

#[test]
fn noncurrent_delete_markers_expire_as_noncurrent_versions() {
    let c = cfg(vec![noncurrent("n", 2, None)]);
    let m = V {
        is_delete_marker: true,
        size: 0,
        ..V::noncurrent("k", 0, utc(2024, 1, 1, 9, 0, 0), 0)
    };
    assert_eq!(
        schedule(&c, &m.facts(), REAL),
        vec![d(Action::DeleteNoncurrent, "n", day(2024, 1, 4))]
    );
}

#[test]
fn delete_markers_never_transition() {
    let c = cfg(vec![
        transition("t", &[(When::Days(0), "COLD")]),
        noncurrent_transition("n", 0, None, "COLD"),
    ]);
    assert!(schedule(&c, &V::marker("k", 0, true).facts(), REAL).is_empty());
    assert!(schedule(&c, &V::marker("k", 0, false).facts(), REAL).is_empty());
    let nc_marker = V {
        is_delete_marker: true,
        ..V::noncurrent("k", 0, S, 0)
    };
    assert!(schedule(&c, &nc_marker.facts(), REAL).is_empty());
}

// ---- noncurrent versions -------------------------------------------------------------------

#[test]
fn noncurrent_expiration_counts_from_becoming_noncurrent() {
    // The user guide's photo.gif, noncurrent from 1/2/2014 11:30 UTC, goes 1/8/2014 00:00 with
    // NoncurrentDays 5.
    let c = cfg(vec![noncurrent("n", 5, None)]);
    let v = V::noncurrent("photo.gif", day(2013, 6, 1), utc(2014, 1, 2, 11, 30, 0), 0);
    assert_eq!(
        schedule(&c, &v.facts(), REAL),
        vec![d(Action::DeleteNoncurrent, "n", day(2014, 1, 8))]
    );
    assert_eq!(due(&c, &v.facts(), REAL, day(2014, 1, 8) - 1), None);
    assert!(due(&c, &v.facts(), REAL, day(2014, 1, 8)).is_some());
}

#[test]
fn noncurrent_expiration_leaves_the_current_version_alone() {
    let c = cfg(vec![noncurrent("n", 1, None)]);
    let v = V::current("k", 0).versioned(true);
    assert!(schedule(&c, &v.facts(), REAL).is_empty());
    assert_eq!(
        explain(&c, &v.facts(), REAL)[0].verdict,
        Verdict::Applies(vec![])
    );
}

#[test]
fn noncurrent_version_without_a_known_successor_time_gets_nothing() {
    let c = cfg(vec![
        noncurrent("n", 1, None),
        noncurrent_transition("t", 0, None, "COLD"),
    ]);
    let v = V {
        noncurrent_since_ns: None,
        ..V::noncurrent("k", 0, 0, 0)
    };
    assert!(schedule(&c, &v.facts(), REAL).is_empty());
}

#[test]
fn newer_noncurrent_versions_keeps_that_many_newest() {
    let c = cfg(vec![noncurrent("n", 1, Some(2))]);
    let since = day(2024, 1, 1);
    for newer in 0..2 {
        let v = V::noncurrent("k", 0, since, newer);
        assert!(
            schedule(&c, &v.facts(), REAL).is_empty(),
            "newer = {newer} is kept"
        );
    }
    for newer in 2..5 {
        let v = V::noncurrent("k", 0, since, newer);
        assert_eq!(
            schedule(&c, &v.facts(), REAL),
            vec![d(Action::DeleteNoncurrent, "n", day(2024, 1, 2))],
            "newer = {newer}"
        );
    }
}

#[test]
fn newer_noncurrent_versions_needs_the_days_too() {
    let c = cfg(vec![noncurrent("n", 10, Some(1))]);
    let v = V::noncurrent("k", 0, day(2024, 1, 1), 3);
    assert_eq!(due(&c, &v.facts(), REAL, day(2024, 1, 5)), None);
    assert!(due(&c, &v.facts(), REAL, day(2024, 1, 11)).is_some());
}

#[test]
fn newer_noncurrent_versions_as_ceph_counts_it() {
    // s3-tests: 10 versions, keep 5 newer noncurrent: 1 current and 5 noncurrent remain.
    let c = cfg(vec![noncurrent("n", 1, Some(5))]);
    let now = day(2030, 1, 1);
    let removed = (0..9)
        .filter(|&newer| {
            let v = V::noncurrent("k", 0, day(2024, 1, 1) + i64::from(newer), newer);
            due(&c, &v.facts(), REAL, now).is_some()
        })
        .count();
    assert_eq!(removed, 4);
}

// ---- transitions --------------------------------------------------------------------------

#[test]
fn transition_days_moves_the_current_version() {
    let c = cfg(vec![transition("t", &[(When::Days(30), "COLD")])]);
    let v = V::current("k", utc(2024, 1, 1, 8, 0, 0));
    assert_eq!(
        schedule(&c, &v.facts(), REAL),
        vec![d(to("COLD"), "t", day(2024, 2, 1))]
    );
}

#[test]
fn a_minimum_size_keeps_small_versions_off_tiers_but_not_their_expiration() {
    let mut c = cfg(vec![Rule {
        expiration: Some(Expiration::Days(60)),
        ..transition("t", &[(When::Days(30), "COLD")])
    }]);
    c.transition_min_size = 128 * 1024;
    let small = V::current("k", utc(2024, 1, 1, 8, 0, 0)).size(128 * 1024 - 1);
    assert_eq!(
        schedule(&c, &small.facts(), REAL),
        vec![d(Action::ExpireCurrent, "t", day(2024, 3, 2))]
    );
    let large = V::current("k", utc(2024, 1, 1, 8, 0, 0)).size(128 * 1024);
    assert_eq!(
        schedule(&c, &large.facts(), REAL)[0],
        d(to("COLD"), "t", day(2024, 2, 1))
    );
}

#[test]
fn transition_days_zero_is_the_next_midnight() {
    let c = cfg(vec![transition("t", &[(When::Days(0), "COLD")])]);
    let v = V::current("k", utc(2024, 1, 1, 8, 0, 0));
    assert_eq!(
        schedule(&c, &v.facts(), REAL),
        vec![d(to("COLD"), "t", day(2024, 1, 2))]
    );
}

#[test]
fn transition_date_moves_on_the_date() {
    let c = cfg(vec![transition(
        "t",
        &[(When::Date(day(2026, 1, 1) / S), "COLD")],
    )]);
    let v = V::current("k", 0);
    assert_eq!(
        schedule(&c, &v.facts(), REAL),
        vec![d(to("COLD"), "t", day(2026, 1, 1))]
    );
}

#[test]
fn transition_skips_a_version_already_in_the_class() {
    let c = cfg(vec![transition("t", &[(When::Days(1), "COLD")])]);
    let v = V::current("k", 0).class("COLD");
    assert!(schedule(&c, &v.facts(), REAL).is_empty());
    assert_eq!(due(&c, &v.facts(), REAL, i64::MAX), None);
}

#[test]
fn noncurrent_transition_counts_from_becoming_noncurrent_and_keeps_newest() {
    let c = cfg(vec![noncurrent_transition("n", 3, Some(1), "COLD")]);
    let since = utc(2024, 1, 1, 12, 0, 0);
    assert!(schedule(&c, &V::noncurrent("k", 0, since, 0).facts(), REAL).is_empty());
    assert_eq!(
        schedule(&c, &V::noncurrent("k", 0, since, 1).facts(), REAL),
        vec![d(to("COLD"), "n", day(2024, 1, 5))]
    );
    assert!(schedule(
        &c,
        &V::noncurrent("k", 0, since, 1).class("COLD").facts(),
        REAL
    )
    .is_empty());
    assert!(
        schedule(&c, &V::current("k", 0).facts(), REAL).is_empty(),
        "not for current versions"
    );
}

#[test]
fn current_transitions_leave_noncurrent_versions_alone() {
    let c = cfg(vec![transition("t", &[(When::Days(0), "COLD")])]);
    assert!(schedule(&c, &V::noncurrent("k", 0, S, 0).facts(), REAL).is_empty());
}

#[test]
fn a_waterfall_goes_straight_to_its_furthest_due_step() {
    let c = cfg(vec![transition(
        "t",
        &[(When::Days(30), "WARM"), (When::Days(90), "COLD")],
    )]);
    let created = day(2024, 1, 1);
    let v = V::current("k", created);
    assert_eq!(
        schedule(&c, &v.facts(), REAL),
        vec![
            d(to("WARM"), "t", day(2024, 1, 31)),
            d(to("COLD"), "t", day(2024, 3, 31))
        ]
    );
    assert_eq!(
        due(&c, &v.facts(), REAL, day(2024, 2, 1)),
        Some(d(to("WARM"), "t", day(2024, 1, 31)))
    );
    assert_eq!(
        due(&c, &v.facts(), REAL, day(2024, 6, 1)),
        Some(d(to("COLD"), "t", day(2024, 3, 31)))
    );
}

#[test]
fn a_waterfall_never_sends_a_version_back_up() {
    let c = cfg(vec![transition(
        "t",
        &[(When::Days(30), "WARM"), (When::Days(90), "COLD")],
    )]);
    let warm = V::current("k", day(2024, 1, 1)).class("WARM");
    assert_eq!(
        schedule(&c, &warm.facts(), REAL),
        vec![d(to("COLD"), "t", day(2024, 3, 31))]
    );
    let cold = V::current("k", day(2024, 1, 1)).class("COLD");
    assert!(schedule(&c, &cold.facts(), REAL).is_empty());
    assert_eq!(due(&c, &cold.facts(), REAL, day(2030, 1, 1)), None);
}

#[test]
fn a_waterfall_across_rules_never_sends_a_version_back_up() {
    let c = cfg(vec![
        transition("warm", &[(When::Days(30), "WARM")]),
        transition("cold", &[(When::Days(90), "COLD")]),
    ]);
    let cold = V::current("k", day(2024, 1, 1)).class("COLD");
    assert!(schedule(&c, &cold.facts(), REAL).is_empty());
}

#[test]
fn transitions_due_at_the_same_time_follow_rule_order() {
    let c = cfg(vec![
        transition("a", &[(When::Days(10), "A")]),
        transition("b", &[(When::Days(10), "B")]),
    ]);
    let v = V::current("k", day(2024, 1, 1));
    assert_eq!(
        due(&c, &v.facts(), REAL, day(2025, 1, 1)),
        Some(d(to("A"), "a", day(2024, 1, 11)))
    );
}

// ---- precedence ---------------------------------------------------------------------------

#[test]
fn unversioned_expiration_beats_a_transition_due_the_same_day() {
    let c = cfg(vec![
        transition("t", &[(When::Days(30), "COLD")]),
        expire_days("e", 30),
    ]);
    let v = V::current("k", day(2024, 1, 1));
    assert_eq!(
        due(&c, &v.facts(), REAL, day(2024, 1, 31)),
        Some(d(Action::ExpireCurrent, "e", day(2024, 1, 31)))
    );
}

#[test]
fn versioned_transition_beats_placing_a_delete_marker() {
    let c = cfg(vec![
        expire_days("e", 30),
        transition("t", &[(When::Days(30), "COLD")]),
    ]);
    let v = V::current("k", day(2024, 1, 1)).versioned(true);
    assert_eq!(
        due(&c, &v.facts(), REAL, day(2024, 1, 31)),
        Some(d(to("COLD"), "t", day(2024, 1, 31)))
    );
    // Once the version is on the tier, the marker comes next.
    let moved = v.class("COLD");
    assert_eq!(
        due(&c, &moved.facts(), REAL, day(2024, 1, 31)),
        Some(d(Action::ExpireCurrent, "e", day(2024, 1, 31)))
    );
}

#[test]
fn a_marker_is_placed_when_no_transition_is_due_yet() {
    let c = cfg(vec![
        expire_days("e", 5),
        transition("t", &[(When::Days(30), "COLD")]),
    ]);
    let v = V::current("k", day(2024, 1, 1)).versioned(true);
    assert_eq!(
        due(&c, &v.facts(), REAL, day(2024, 1, 10)),
        Some(d(Action::ExpireCurrent, "e", day(2024, 1, 6)))
    );
}

#[test]
fn noncurrent_deletion_beats_a_noncurrent_transition() {
    let c = cfg(vec![
        noncurrent_transition("t", 5, None, "COLD"),
        noncurrent("n", 5, None),
    ]);
    let v = V::noncurrent("k", 0, day(2024, 1, 1), 0);
    assert_eq!(
        due(&c, &v.facts(), REAL, day(2024, 1, 6)),
        Some(d(Action::DeleteNoncurrent, "n", day(2024, 1, 6)))
    );
}

#[test]
fn the_shorter_expiration_wins() {
    let c = cfg(vec![expire_days("long", 10), expire_days("short", 5)]);
    let v = V::current("k", day(2024, 1, 1));
    assert_eq!(
        due(&c, &v.facts(), REAL, day(2024, 2, 1)),
        Some(d(Action::ExpireCurrent, "short", day(2024, 1, 6)))
    );
    assert_eq!(
        schedule(&c, &v.facts(), REAL),
        vec![
            d(Action::ExpireCurrent, "short", day(2024, 1, 6)),
            d(Action::ExpireCurrent, "long", day(2024, 1, 11))
        ]
    );
}

#[test]
fn equal_times_follow_rule_order() {
    let c = cfg(vec![
        expire_days("first", 5),
        expire_date("second", day(2024, 1, 6)),
    ]);
    let v = V::current("k", day(2024, 1, 1));
    assert_eq!(
        due(&c, &v.facts(), REAL, day(2024, 1, 6)),
        Some(d(Action::ExpireCurrent, "first", day(2024, 1, 6)))
    );
}

#[test]
fn rules_that_do_not_apply_schedule_nothing() {
    let c = cfg(vec![
        disabled(expire_days("off", 1)),
        with_filter(expire_days("other", 1), prefix("other/")),
        expire_days("on", 7),
    ]);
    let v = V::current("k", day(2024, 1, 1));
    assert_eq!(
        schedule(&c, &v.facts(), REAL),
        vec![d(Action::ExpireCurrent, "on", day(2024, 1, 8))]
    );
}

#[test]
fn nothing_is_due_without_rules() {
    let v = V::current("k", 0);
    assert!(schedule(&cfg(vec![]), &v.facts(), REAL).is_empty());
    assert_eq!(due(&cfg(vec![]), &v.facts(), REAL, i64::MAX), None);
    assert_eq!(expiration(&cfg(vec![]), &v.facts(), REAL), None);
}

#[test]
fn one_rule_can_expire_current_and_noncurrent_versions_and_markers() {
    let mut r = expire_days("all", 1);
    r.noncurrent_expiration = Some(NoncurrentExpiration {
        days: 1,
        newer_noncurrent_versions: None,
    });
    let c = cfg(vec![r]);
    let now = day(2030, 1, 1);
    let current = V::current("k", day(2024, 1, 1)).versioned(true);
    let old = V::noncurrent("k", 0, day(2024, 1, 1), 0);
    let marker = V::marker("k", day(2024, 1, 1), true);
    assert_eq!(
        due(&c, &current.facts(), REAL, now).unwrap().action,
        Action::ExpireCurrent
    );
    assert_eq!(
        due(&c, &old.facts(), REAL, now).unwrap().action,
        Action::DeleteNoncurrent
    );
    assert_eq!(
        due(&c, &marker.facts(), REAL, now).unwrap().action,
        Action::DeleteMarker
    );
}

// ---- object lock --------------------------------------------------------------------------

#[test]
fn retention_blocks_expiring_an_unversioned_object_until_it_ends() {
    let c = cfg(vec![expire_days("e", 1)]);
    let until = day(2024, 6, 1);
    let v = V::current("k", day(2024, 1, 1)).locked(until);
    assert!(
        !schedule(&c, &v.facts(), REAL).is_empty(),
        "schedule ignores the lock"
    );
    assert_eq!(due(&c, &v.facts(), REAL, day(2024, 2, 1)), None);
    assert_eq!(due(&c, &v.facts(), REAL, until - 1), None);
    assert_eq!(
        due(&c, &v.facts(), REAL, until),
        Some(d(Action::ExpireCurrent, "e", day(2024, 1, 2)))
    );
}

#[test]
fn legal_hold_blocks_removal_forever() {
    let c = cfg(vec![
        expire_days("e", 1),
        noncurrent("n", 1, None),
        expire_marker("m"),
    ]);
    let now = day(2100, 1, 1);
    let current = V::current("k", 0).locked(i64::MAX);
    let old = V::noncurrent("k", 0, S, 0).locked(i64::MAX);
    let marker = V::marker("k", 0, true).locked(i64::MAX);
    assert_eq!(due(&c, &current.facts(), REAL, now), None);
    assert_eq!(due(&c, &old.facts(), REAL, now), None);
    assert_eq!(due(&c, &marker.facts(), REAL, now), None);
}

#[test]
fn a_locked_version_in_a_versioned_bucket_still_gets_a_marker() {
    // Enabled and Suspended buckets both report `versioned`: expiring places a marker
    // (a null one when Suspended), which leaves the locked version in place.
    let c = cfg(vec![expire_days("e", 1)]);
    let v = V::current("k", day(2024, 1, 1))
        .versioned(true)
        .locked(i64::MAX);
    assert_eq!(
        due(&c, &v.facts(), REAL, day(2024, 1, 2)),
        Some(d(Action::ExpireCurrent, "e", day(2024, 1, 2)))
    );
}

#[test]
fn a_locked_noncurrent_version_is_not_deleted() {
    let c = cfg(vec![noncurrent("n", 1, None)]);
    let v = V::noncurrent("k", 0, day(2024, 1, 1), 0).locked(day(2025, 1, 1));
    assert_eq!(due(&c, &v.facts(), REAL, day(2024, 6, 1)), None);
    assert!(due(&c, &v.facts(), REAL, day(2025, 1, 1)).is_some());
}

#[test]
fn a_lock_lets_a_transition_through_in_place_of_a_blocked_removal() {
    let unversioned = cfg(vec![
        expire_days("e", 1),
        transition("t", &[(When::Days(1), "COLD")]),
    ]);
    let v = V::current("k", day(2024, 1, 1)).locked(i64::MAX);
    assert_eq!(
        due(&unversioned, &v.facts(), REAL, day(2024, 2, 1)),
        Some(d(to("COLD"), "t", day(2024, 1, 2)))
    );
    let noncurrent_cfg = cfg(vec![
        noncurrent("n", 1, None),
        noncurrent_transition("t", 1, None, "COLD"),
    ]);
    let old = V::noncurrent("k", 0, day(2024, 1, 1), 0).locked(i64::MAX);
    assert_eq!(
        due(&noncurrent_cfg, &old.facts(), REAL, day(2024, 2, 1)),
        Some(d(to("COLD"), "t", day(2024, 1, 2)))
    );
}

#[test]
fn an_expired_lock_does_not_block() {
    let c = cfg(vec![expire_days("e", 1)]);
    let v = V::current("k", day(2024, 1, 1)).locked(day(2024, 1, 1));
    assert!(due(&c, &v.facts(), REAL, day(2024, 1, 2)).is_some());
}

#[test]
fn removals_are_what_object_lock_forbids() {
    assert!(Action::DeleteNoncurrent.removes_version());
    assert!(Action::DeleteMarker.removes_version());
    assert!(!Action::ExpireCurrent.removes_version());
    assert!(!to("COLD").removes_version());
    assert!(!Action::AbortUpload.removes_version());
    assert!(
        Action::ExpireCurrent.removes_data(false),
        "unversioned: a deletion"
    );
    assert!(
        !Action::ExpireCurrent.removes_data(true),
        "versioned: a marker"
    );
    assert!(Action::DeleteNoncurrent.removes_data(true));
    assert!(Action::DeleteMarker.removes_data(true));
    assert!(!to("COLD").removes_data(false));
    let names = [
        Action::ExpireCurrent,
        Action::DeleteNoncurrent,
        Action::DeleteMarker,
        to("X"),
        Action::AbortUpload,
    ]
    .map(|a| a.name());
    assert_eq!(
        names,
        [
            "expire_current",
            "delete_noncurrent",
            "delete_marker",
            "transition",
            "abort_upload"
        ]
    );
}

// ---- explain ------------------------------------------------------------------------------

#[test]
fn explain_gives_one_verdict_per_rule_in_order() {
    let c = cfg(vec![
        disabled(with_filter(expire_days("off", 1), prefix("nope/"))),
        with_filter(expire_days("prefix", 1), prefix("logs/")),
        with_filter(expire_days("tag", 1), tags(&[("env", "prod")])),
        with_filter(expire_days("small", 1), sizes(Some(1000), None)),
        with_filter(expire_days("large", 1), sizes(None, Some(10))),
        with_filter(expire_days("applies", 2), prefix("data/")),
        noncurrent("noncurrent-only", 1, None),
    ]);
    let v = V::current("data/x", utc(2024, 1, 1, 12, 0, 0))
        .size(100)
        .tag("env", "dev");
    let got: Vec<(String, Verdict)> = explain(&c, &v.facts(), REAL)
        .into_iter()
        .map(|r| (r.rule_id, r.verdict))
        .collect();
    assert_eq!(
        got,
        vec![
            ("off".into(), Verdict::Disabled),
            (
                "prefix".into(),
                Verdict::PrefixDiffers {
                    prefix: "logs/".into()
                }
            ),
            (
                "tag".into(),
                Verdict::TagMissing {
                    key: "env".into(),
                    value: "prod".into()
                }
            ),
            ("small".into(), Verdict::TooSmall { greater_than: 1000 }),
            ("large".into(), Verdict::TooLarge { less_than: 10 }),
            (
                "applies".into(),
                Verdict::Applies(vec![d(Action::ExpireCurrent, "applies", day(2024, 1, 4))])
            ),
            ("noncurrent-only".into(), Verdict::Applies(vec![])),
        ]
    );
}

#[test]
fn explain_names_the_first_failing_part() {
    let f = Filter {
        prefix: "docs/".into(),
        tags: vec![("a".into(), "1".into())],
        size_greater_than: Some(50),
        size_less_than: Some(60),
        form: FilterForm::And,
    };
    let everything_fails = V::current("x", 0).size(100);
    assert_eq!(
        verdict(
            disabled(with_filter(expire_days("r", 1), f.clone())),
            &everything_fails
        ),
        Verdict::Disabled
    );
    assert!(matches!(
        verdict(
            with_filter(expire_days("r", 1), f.clone()),
            &everything_fails
        ),
        Verdict::PrefixDiffers { .. }
    ));
    let right_prefix = V {
        key: "docs/x".into(),
        ..everything_fails
    };
    assert!(matches!(
        verdict(with_filter(expire_days("r", 1), f.clone()), &right_prefix),
        Verdict::TagMissing { .. }
    ));
    let tagged = right_prefix.tag("a", "1").size(10);
    assert_eq!(
        verdict(with_filter(expire_days("r", 1), f), &tagged),
        Verdict::TooSmall { greater_than: 50 }
    );
}

#[test]
fn explain_lists_a_rules_actions_earliest_first() {
    let mut r = transition("both", &[(When::Days(10), "COLD")]);
    r.expiration = Some(Expiration::Days(20));
    let c = cfg(vec![r, expire_days("other", 5)]);
    let v = V::current("k", day(2024, 1, 1));
    let verdicts = explain(&c, &v.facts(), REAL);
    assert_eq!(
        verdicts[0].verdict,
        Verdict::Applies(vec![
            d(to("COLD"), "both", day(2024, 1, 11)),
            d(Action::ExpireCurrent, "both", day(2024, 1, 21))
        ])
    );
    assert_eq!(
        verdicts[1].verdict,
        Verdict::Applies(vec![d(Action::ExpireCurrent, "other", day(2024, 1, 6))])
    );
}

#[test]
fn explain_agrees_with_schedule() {
    let c = cfg(vec![
        expire_days("e", 3),
        noncurrent("n", 2, None),
        transition("t", &[(When::Days(1), "COLD")]),
        disabled(expire_days("off", 1)),
    ]);
    for v in [
        V::current("k", day(2024, 1, 1)),
        V::noncurrent("k", 0, day(2024, 1, 1), 0),
        V::marker("k", 0, true),
    ] {
        let from_explain: Vec<Due> = explain(&c, &v.facts(), REAL)
            .into_iter()
            .flat_map(|r| match r.verdict {
                Verdict::Applies(dues) => dues,
                _ => vec![],
            })
            .collect();
        let mut from_schedule = schedule(&c, &v.facts(), REAL);
        let mut sorted = from_explain;
        sorted.sort_by_key(|d| d.at_ns);
        from_schedule.sort_by_key(|d| d.at_ns);
        assert_eq!(sorted, from_schedule, "{v:?}");
    }
}

// ---- x-amz-expiration -----------------------------------------------------------------------

#[test]
fn expiration_header_names_the_earliest_rule() {
    let c = cfg(vec![
        expire_days("days-10", 10),
        expire_date("date", day(2024, 1, 5)),
        expire_days("days-30", 30),
    ]);
    let v = V::current("k", utc(2024, 1, 1, 10, 0, 0));
    assert_eq!(
        expiration(&c, &v.facts(), REAL),
        Some(d(Action::ExpireCurrent, "date", day(2024, 1, 5)))
    );
}

#[test]
fn expiration_header_ties_name_the_first_rule() {
    let c = cfg(vec![expire_days("a", 7), expire_days("b", 7)]);
    let v = V::current("k", 0);
    assert_eq!(expiration(&c, &v.facts(), REAL).unwrap().rule_id, "a");
}

#[test]
fn expiration_header_only_for_current_data_versions() {
    let c = cfg(vec![expire_days("e", 1)]);
    assert_eq!(expiration(&c, &V::marker("k", 0, true).facts(), REAL), None);
    assert_eq!(
        expiration(&c, &V::noncurrent("k", 0, S, 0).facts(), REAL),
        None
    );
    assert!(expiration(&c, &V::current("k", 0).versioned(true).facts(), REAL).is_some());
}

#[test]
fn expiration_header_ignores_other_actions_and_rules_that_do_not_apply() {
    let c = cfg(vec![
        expire_marker("m"),
        noncurrent("n", 1, None),
        transition("t", &[(When::Days(1), "COLD")]),
        disabled(expire_days("off", 1)),
        with_filter(expire_days("tagged", 1), tags(&[("env", "prod")])),
    ]);
    assert_eq!(expiration(&c, &V::current("k", 0).facts(), REAL), None);
    let tagged = V::current("k", 0).tag("env", "prod");
    assert_eq!(
        expiration(&c, &tagged.facts(), REAL).unwrap().rule_id,
        "tagged"
    );
}

#[test]
fn expiration_header_is_given_even_when_locked_or_overdue() {
    let c = cfg(vec![expire_days("e", 1)]);
    let v = V::current("k", day(2000, 1, 1)).locked(i64::MAX);
    assert_eq!(
        expiration(&c, &v.facts(), REAL),
        Some(d(Action::ExpireCurrent, "e", day(2000, 1, 2)))
    );
}

// ---- incomplete multipart uploads ------------------------------------------------------------

fn upload(key: &str, initiated_ns: i64) -> (String, i64) {
    (key.to_owned(), initiated_ns)
}

fn abort_of(c: &Configuration, u: &(String, i64), clock: Clock) -> Option<Due> {
    upload_abort(
        c,
        &UploadFacts {
            key: &u.0,
            initiated_ns: u.1,
        },
        clock,
    )
}

#[test]
fn abort_counts_days_after_initiation() {
    let c = cfg(vec![abort("a", 7)]);
    let u = upload("k", utc(2024, 1, 1, 13, 0, 0));
    assert_eq!(
        abort_of(&c, &u, REAL),
        Some(d(Action::AbortUpload, "a", day(2024, 1, 9)))
    );
}

#[test]
fn abort_picks_the_earliest_matching_rule() {
    let c = cfg(vec![
        abort("late", 10),
        with_filter(abort("logs", 2), prefix("logs/")),
        with_filter(abort("other", 1), prefix("other/")),
        disabled(abort("off", 1)),
    ]);
    let u = upload("logs/x", day(2024, 1, 1));
    assert_eq!(
        abort_of(&c, &u, REAL),
        Some(d(Action::AbortUpload, "logs", day(2024, 1, 3)))
    );
    let elsewhere = upload("data/x", day(2024, 1, 1));
    assert_eq!(
        abort_of(&c, &elsewhere, REAL),
        Some(d(Action::AbortUpload, "late", day(2024, 1, 11)))
    );
}

#[test]
fn abort_ties_name_the_first_rule() {
    let c = cfg(vec![abort("a", 3), abort("b", 3)]);
    assert_eq!(abort_of(&c, &upload("k", 0), REAL).unwrap().rule_id, "a");
}

#[test]
fn abort_needs_a_rule_with_the_action_and_a_matching_prefix() {
    let u = upload("k", 0);
    assert_eq!(abort_of(&cfg(vec![expire_days("e", 1)]), &u, REAL), None);
    assert_eq!(
        abort_of(
            &cfg(vec![with_filter(abort("a", 1), prefix("x/"))]),
            &u,
            REAL
        ),
        None
    );
    assert_eq!(
        abort_of(&cfg(vec![disabled(abort("a", 1))]), &u, REAL),
        None
    );
}

#[test]
fn abort_never_comes_from_a_rule_with_tags_or_sizes() {
    let u = upload("k", 0);
    let tagged = with_filter(abort("t", 1), tags(&[("env", "prod")]));
    let sized = with_filter(abort("s", 1), sizes(None, Some(10)));
    assert_eq!(abort_of(&cfg(vec![tagged, sized]), &u, REAL), None);
}

#[test]
fn abort_with_a_two_second_day() {
    let c = cfg(vec![abort("a", 1)]);
    assert_eq!(
        abort_of(&c, &upload("k", 3 * S), SHORT),
        Some(d(Action::AbortUpload, "a", 6 * S))
    );
}

#[test]
fn abort_rules_schedule_nothing_for_versions() {
    let c = cfg(vec![abort("a", 1)]);
    assert!(schedule(&c, &V::current("k", 0).facts(), REAL).is_empty());
    assert_eq!(
        explain(&c, &V::current("k", 0).facts(), REAL)[0].verdict,
        Verdict::Applies(vec![])
    );
}
