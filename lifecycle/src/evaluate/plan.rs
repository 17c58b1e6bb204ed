//! The schedule behind `schedule`, `due`, `explain` and `expiration`: what each rule does to
//! one version, with the index of the rule that does it.

use super::{exclusion, Action, Clock, Due, VersionFacts};
use crate::model::{Configuration, Expiration, Rule, When};

/// A scheduled action and the index of the rule that scheduled it (ids are unique only in a
/// valid configuration).
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) rule: usize,
    pub(super) due: Due,
}

/// The schedule with rule indexes: every enabled, matching rule's actions, waterfall steps
/// already taken left out, sorted by time then rule order.
pub(super) fn entries(config: &Configuration, v: &VersionFacts, clock: Clock) -> Vec<Entry> {
    let mut all = Vec::new();
    for (i, rule) in config.rules.iter().enumerate() {
        if exclusion(rule, v).is_none() {
            rule_actions(rule, v, clock, &mut |due| all.push(Entry { rule: i, due }));
        }
    }
    // The latest transition into the class the version is in marks how far down the
    // waterfall it has gone; nothing at or before that point applies to it again.
    let reached = all
        .iter()
        .filter(|e| matches!(&e.due.action, Action::Transition { storage_class } if storage_class == v.storage_class))
        .map(|e| e.due.at_ns)
        .max();
    all.retain(|e| match &e.due.action {
        Action::Transition { storage_class } => {
            storage_class != v.storage_class
                && reached.is_none_or(|r| e.due.at_ns > r)
                && v.size >= config.transition_min_size
        }
        _ => true,
    });
    // Stable: equal times stay in rule order.
    all.sort_by_key(|e| e.due.at_ns);
    all
}

/// Every action one rule takes on a version, transitions into the version's own class
/// included (`entries` needs them to find how far the version has gone).
fn rule_actions(rule: &Rule, v: &VersionFacts, clock: Clock, push: &mut dyn FnMut(Due)) {
    let mut emit = |action: Action, at_ns: i64| {
        push(Due {
            action,
            rule_id: rule.id.clone(),
            at_ns,
        })
    };
    let expired_marker = v.is_delete_marker && v.only_version;
    if v.is_latest {
        match &rule.expiration {
            Some(Expiration::Days(days)) => {
                let at = clock.days_after(v.mod_time_ns, *days);
                if !v.is_delete_marker {
                    emit(Action::ExpireCurrent, at);
                } else if expired_marker {
                    emit(Action::DeleteMarker, at);
                }
            }
            Some(Expiration::Date(secs)) => {
                let at = date_ns(*secs);
                if !v.is_delete_marker {
                    emit(Action::ExpireCurrent, at);
                } else if expired_marker {
                    emit(Action::DeleteMarker, at);
                }
            }
            Some(Expiration::ExpiredObjectDeleteMarker) if expired_marker => {
                emit(Action::DeleteMarker, v.mod_time_ns);
            }
            Some(Expiration::ExpiredObjectDeleteMarker) | None => {}
        }
        if !v.is_delete_marker {
            for t in &rule.transitions {
                let at = match t.when {
                    When::Days(days) => clock.days_after(v.mod_time_ns, days),
                    When::Date(secs) => date_ns(secs),
                };
                emit(transition(&t.storage_class), at);
            }
        }
        return;
    }
    let Some(since) = v.noncurrent_since_ns else {
        return;
    };
    let enough_newer = |keep: Option<u32>| v.newer_noncurrent >= keep.unwrap_or(0);
    if let Some(nc) = &rule.noncurrent_expiration {
        if enough_newer(nc.newer_noncurrent_versions) {
            emit(Action::DeleteNoncurrent, clock.days_after(since, nc.days));
        }
    }
    if !v.is_delete_marker {
        for t in &rule.noncurrent_transitions {
            if enough_newer(t.newer_noncurrent_versions) {
                emit(
                    transition(&t.storage_class),
                    clock.days_after(since, t.days),
                );
            }
        }
    }
}

fn transition(storage_class: &str) -> Action {
    Action::Transition {
        storage_class: storage_class.to_owned(),
    }
}

/// A `Date` (seconds since the epoch) in ns, saturating.
fn date_ns(secs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000)
}
