//! A bucket's lifecycle configuration as Strata stores it (JSON in the bucket record). The S3
//! front maps the XML of PutBucketLifecycleConfiguration onto these types and back.

use serde::{Deserialize, Serialize};

/// Most rules one configuration may hold (AWS: 1,000).
pub const MAX_RULES: usize = 1000;

/// A bucket's lifecycle configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configuration {
    pub rules: Vec<Rule>,
    /// Versions smaller than this many bytes are never transitioned: 131,072 under AWS's
    /// `x-amz-transition-default-minimum-object-size: all_storage_classes_128K`; 0 (any size,
    /// as AWS's Glacier classes under `varies_by_storage_class`) by default.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub transition_min_size: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One rule: which objects (`filter`) and what happens to them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Unique within the configuration, at most 255 characters (AWS gives a generated id to
    /// a rule sent without one).
    pub id: String,
    /// `Status` Enabled; a Disabled rule is kept but never acts.
    pub enabled: bool,
    pub filter: Filter,
    /// Expiration of current versions (or of expired delete markers).
    pub expiration: Option<Expiration>,
    pub noncurrent_expiration: Option<NoncurrentExpiration>,
    /// `AbortIncompleteMultipartUpload/DaysAfterInitiation`.
    pub abort_incomplete_upload_days: Option<u32>,
    pub transitions: Vec<Transition>,
    pub noncurrent_transitions: Vec<NoncurrentTransition>,
}

/// Which objects a rule applies to: every part given must match; an empty filter matches
/// every object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Key prefix ("" matches all keys).
    pub prefix: String,
    /// Tags the object must all carry (key, value).
    pub tags: Vec<(String, String)>,
    /// The object is larger than this many bytes.
    pub size_greater_than: Option<u64>,
    /// The object is smaller than this many bytes.
    pub size_less_than: Option<u64>,
    /// How the filter was written, so GetBucketLifecycleConfiguration returns its shape.
    pub form: FilterForm,
}

/// The XML shape a filter was given in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterForm {
    /// `<Filter/>` or `<Filter></Filter>`: every object.
    #[default]
    Empty,
    /// The legacy `<Prefix>` directly in the rule, no `<Filter>`.
    LegacyPrefix,
    /// `<Filter><Prefix>`.
    Prefix,
    /// `<Filter><Tag>`.
    Tag,
    /// `<Filter><ObjectSizeGreaterThan>`.
    SizeGreaterThan,
    /// `<Filter><ObjectSizeLessThan>`.
    SizeLessThan,
    /// `<Filter><And>` with any of prefix, tags, size bounds.
    And,
}

/// When a current version expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiration {
    /// Days after creation (> 0), rounded up to the next lifecycle midnight.
    Days(u32),
    /// At this instant: a midnight UTC, seconds since the Unix epoch.
    Date(i64),
    /// Remove a delete marker that is its key's only remaining version.
    ExpiredObjectDeleteMarker,
}

/// When a noncurrent version expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentExpiration {
    /// Days after the version became noncurrent (> 0).
    pub days: u32,
    /// Keep this many newest noncurrent versions whatever their age (1–100).
    pub newer_noncurrent_versions: Option<u32>,
}

/// When a transition happens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum When {
    /// Days after creation (≥ 0).
    Days(u32),
    /// A midnight UTC, seconds since the Unix epoch.
    Date(i64),
}

/// A transition of current versions to another storage class (a remote tier).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub when: When,
    pub storage_class: String,
}

/// A transition of noncurrent versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentTransition {
    pub days: u32,
    pub newer_noncurrent_versions: Option<u32>,
    pub storage_class: String,
}

impl Configuration {
    /// The stored form (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("configurations always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("corrupt lifecycle configuration: {e}"))
    }
}
