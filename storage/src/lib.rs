//! Strata's hot tier: erasure-coded objects on a fixed set of drives.
//!
//! How the pieces fit, bottom up:
//! - [`layout`]: shard counts, sizes and quorums (pure arithmetic);
//! - [`bitrot`] and [`erasure`]: one block becomes `data + parity` hashed shards and back;
//! - [`meta`]: the per-key record every drive keeps (versions, parts, checksums, lock, tier
//!   and replication state);
//! - [`drive`]: the one trait every drive implements; [`local`] is a directory on this node;
//! - [`set`]: an erasure set, with the write path (stage, commit), [`read`] (streamed ranges,
//!   heal on read), [`list`] (quorum-merged ordered listing), [`multipart`] and [`heal`];
//! - [`versions`]: what writes and deletes do to a key's versions, and object-lock rules;
//! - [`store`]: all sets of the deployment, bucket records and background work.

pub mod bitrot;
pub mod drive;
pub mod erasure;
pub mod error;
pub mod heal;
pub mod heal_queue;
pub mod layout;
pub mod list;
pub mod local;
pub mod locks;
pub mod meta;
pub mod multipart;
pub mod quorum;
pub mod read;
pub mod set;
pub mod space;
pub mod store;
pub mod versions;

pub use drive::Drive;
pub use error::{Result, StorageError};
pub use heal::{HealReport, ObjectHeal};
pub use heal_queue::HealQueueStats;
pub use local::LocalDrive;
pub use set::{ByteStream, ErasureSet, ObjectView, Precondition, PutOptions, Staged};
pub use store::{Store, VersionEntry, VersionPage};
pub use versions::{DeleteOptions, Deleted, Versioning, Which};
