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
//! - [`tiered`]: versions whose bytes live on a remote tier, and the journal hook that keeps
//!   every change from orphaning remote data;
//! - [`replication`]: the hook that stamps and queues every change a replication rule
//!   sends to a target, in the same step as the change, and replicas' own writes;
//! - [`store`]: all sets of the deployment, bucket records and background work;
//! - [`cluster_config`]: cluster-wide configuration documents behind one interface;
//! - [`catalog`] and [`raft`]: bucket records behind one interface, and the cluster's control
//!   plane that holds them in a replicated state machine (openraft);
//! - [`dlock`]: per-object write locks across nodes (majority grants with leases, as dsync);
//! - [`rpc`], [`rpc_server`] and [`remote`]: the internal RPC, its serving side, and the
//!   drives and lock tables of other nodes behind the same traits as local ones;
//! - [`rpc_auth`]: the signatures of the cluster's internal calls (HMAC over the cluster
//!   secret, clock-skew window, replay refusal);
//! - [`topology`]: MinIO-style endpoint arguments and erasure sets spread across nodes (the
//!   multi-node cluster's layout; pure).

pub mod bitrot;
pub mod catalog;
pub mod cluster_config;
pub mod dlock;
pub mod drive;
pub mod erasure;
pub mod error;
pub mod group_commit;
pub mod heal;
pub mod heal_queue;
pub mod layout;
pub mod list;
pub mod local;
pub mod locks;
pub mod meta;
pub mod multipart;
pub mod quorum;
pub mod raft;
pub mod read;
pub mod remote;
pub mod replication;
pub mod rpc;
pub mod rpc_auth;
pub mod rpc_server;
pub mod set;
pub mod space;
pub mod store;
pub mod tiered;
pub mod topology;
pub mod versions;

pub use cluster_config::ClusterConfig;
pub use drive::Drive;
pub use error::{Result, StorageError};
pub use heal::{HealProgress, HealReport, ObjectHeal};
pub use heal_queue::HealQueueStats;
pub use local::LocalDrive;
pub use replication::{ReplicaOf, ReplicationEntry, ReplicationHook, ReplicationOp};
pub use set::{ByteStream, ErasureSet, ObjectView, Precondition, PutOptions, Staged};
pub use store::{Store, VersionEntry, VersionPage};
pub use tiered::{RemoteObject, RemoteReleases};
pub use versions::{DeleteOptions, Deleted, Versioning, Which};
