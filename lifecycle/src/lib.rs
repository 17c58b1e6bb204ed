//! S3 lifecycle for Strata: which versions and uploads a bucket's rules expire, when, and the
//! scanner that carries the actions out.
//!
//! - `model`: the configuration as stored (what PutBucketLifecycleConfiguration accepted).
//! - `validate`: AWS's rules for a configuration, with AWS's error codes; a configuration
//!   that passes can always be applied.
//! - `evaluate`: pure functions from (rules, what is known of a version, a clock) to the
//!   actions due and when, AWS's precedence when several rules apply, and the explanation of
//!   why a rule does or does not apply.
//! - `scanner`: the background walk that applies due actions through the store's delete
//!   paths, on a `cron` schedule, rate-limited, resuming from its `journal` after a crash.
//! - `report`: `explain` (why a version has or has not expired) and `preview` (what a
//!   configuration would do, day by day) for operators.
//!
//! Semantics follow AWS's documentation: "Lifecycle configuration elements"
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/intro-lifecycle-rules.html>),
//! "How Amazon S3 handles conflicting actions" and the due-time rounding to the next
//! midnight UTC.

pub mod evaluate;
pub mod journal;
pub mod model;
pub mod report;
pub mod scanner;
pub mod validate;

pub use evaluate::{Action, Clock, Due, RuleVerdict, UploadFacts, VersionFacts};
pub use model::{
    Configuration, Expiration, Filter, FilterForm, NoncurrentExpiration, NoncurrentTransition,
    Rule, Transition, When,
};
pub use validate::{validate, ValidationError};
