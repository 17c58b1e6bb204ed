//! Node configuration: built-in defaults, then the TOML file, then environment variables,
//! then command-line flags. A bad value stops start-up with a message naming the key.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_ADDRESS: &str = "127.0.0.1:9000";
pub const DEFAULT_DATA: &str = "./data";
pub const DEFAULT_DRIVES: usize = 4;
pub const DEFAULT_USER: &str = "strataadmin";
pub const DEFAULT_PASSWORD: &str = "strataadmin";
/// Seconds a client may send nothing while a request is being read.
pub const DEFAULT_IDLE_TIMEOUT: u64 = 60;

/// The configuration file, as written by the operator.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `HOST:PORT` to listen on.
    pub address: Option<String>,
    pub root_user: Option<String>,
    pub root_password: Option<String>,
    /// Drive directories, in a fixed order (the order is part of the drives' identity).
    pub drives: Option<Vec<PathBuf>>,
    /// Parity shards per erasure set; MinIO's defaults when absent.
    pub parity: Option<usize>,
    /// Base domains for virtual-host-style requests (`bucket.DOMAIN`).
    pub domains: Option<Vec<String>>,
    /// Seconds a client may send nothing while its request headers or body are read.
    pub idle_timeout: Option<u64>,
    /// Bytes every drive keeps free; new data is refused below it.
    pub min_free: Option<u64>,
    /// Seconds in a lifecycle day (tests and demos shorten it).
    pub lifecycle_day_seconds: Option<u64>,
    /// When the lifecycle scanner runs: a cron expression with seconds.
    pub lifecycle_schedule: Option<String>,
    /// Most lifecycle actions the scanner applies per second.
    pub lifecycle_rate: Option<u32>,
    /// Seconds the lifecycle scanner pauses per second of scanning.
    pub lifecycle_scan_pause: Option<f64>,
    /// Milliseconds before the first retry of a failed replication (doubling, at most 5 min;
    /// tests shorten it).
    pub replication_min_backoff_ms: Option<u64>,
    /// Remote tiers (`[[tiers]]`), added to the tier registry at start-up (replacing a
    /// registered tier of the same name).
    #[serde(default)]
    pub tiers: Vec<tiering::TierConfig>,
    /// A multi-node deployment (`[cluster]`), instead of `drives`.
    pub cluster: Option<ClusterSection>,
}

/// `[cluster]` in the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// The topology in MinIO's forms, as on the command line:
    /// `["http://10.0.0.{1...4}:9000/mnt/disk{1...2}"]`.
    pub endpoints: Vec<String>,
}

/// This node's place in a multi-node deployment.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub topology: storage::topology::Topology,
    /// This node, `HOST:PORT` as the topology names it.
    pub me: String,
    /// `STRATA_CLUSTER_SECRET`: keys the internal calls' signatures.
    pub secret: String,
}

/// What `strata server` accepts on the command line.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub address: Option<String>,
    pub data: Option<PathBuf>,
    pub drives: Option<usize>,
    pub config: Option<PathBuf>,
    /// Topology arguments (`http://HOST:PORT/PATH` with ellipses).
    pub endpoints: Vec<String>,
}

/// The resolved configuration of a node.
#[derive(Debug, Clone)]
pub struct Config {
    pub address: SocketAddr,
    pub root_user: String,
    pub root_password: String,
    pub drives: Vec<PathBuf>,
    pub parity: Option<usize>,
    pub domains: Vec<String>,
    pub idle_timeout: std::time::Duration,
    /// Bytes every drive keeps free (`None`: 1 % of the drive, at most 1 GiB).
    pub min_free: Option<u64>,
    /// True when the built-in credentials are in use (printed at start).
    pub default_credentials: bool,
    pub lifecycle: lifecycle::scanner::Settings,
    /// Tiers the configuration file defines.
    pub tiers: Vec<tiering::TierConfig>,
    /// The first retry delay of a failed replication.
    pub replication_min_backoff: std::time::Duration,
    /// Set when the topology spans several nodes; `drives` are then this node's drives.
    pub cluster: Option<ClusterSettings>,
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("config file {}: {}", path.display(), e.to_string().trim()))
}

/// `DIR/drive1 … DIR/driveN`.
pub fn drive_dirs(data: &Path, count: usize) -> Vec<PathBuf> {
    (1..=count)
        .map(|i| data.join(format!("drive{i}")))
        .collect()
}

impl Config {
    /// Resolves the configuration; `env` reads environment variables (injected for tests).
    pub fn resolve(o: &Overrides, env: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let file = match &o.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let origin = |key: &str| match &o.config {
            Some(p) => format!("`{key}` in {}", p.display()),
            None => format!("`{key}`"),
        };
        let address_text = o
            .address
            .clone()
            .or(file.address.clone())
            .unwrap_or_else(|| DEFAULT_ADDRESS.into());
        let address: SocketAddr = address_text.parse().with_context(|| {
            format!(
                "{}: '{address_text}' is not a HOST:PORT socket address",
                origin("address")
            )
        })?;

        let endpoints = match (&o.endpoints[..], &file.cluster) {
            ([], Some(c)) => c.endpoints.clone(),
            (given, _) => given.to_vec(),
        };
        let mut cluster = None;
        let drives = if !endpoints.is_empty() {
            let topology = storage::topology::Topology::from_args(&endpoints)
                .map_err(|e| anyhow::anyhow!("the topology: {e}"))?;
            let nodes = topology.nodes();
            let me = match (&o.address, &file.address) {
                (Some(a), _) | (None, Some(a)) => a.clone(),
                (None, None) if nodes.len() == 1 => nodes[0].clone(),
                (None, None) => bail!(
                    "a multi-node topology needs --address HOST:PORT naming this node (one of {})",
                    nodes.join(", ")
                ),
            };
            if !nodes.contains(&me) {
                bail!(
                    "--address {me} is not a node of the topology (its nodes: {})",
                    nodes.join(", ")
                );
            }
            let mine: Vec<PathBuf> = topology
                .drives_of(&me)
                .into_iter()
                .map(|i| PathBuf::from(&topology.drives[i].path))
                .collect();
            if nodes.len() > 1 {
                let secret = env("STRATA_CLUSTER_SECRET").unwrap_or_default();
                if secret.len() < 8 {
                    bail!("a multi-node deployment needs STRATA_CLUSTER_SECRET (at least 8 characters, the same on every node)");
                }
                cluster = Some(ClusterSettings {
                    topology,
                    me,
                    secret,
                });
            }
            mine
        } else {
            match (&o.data, &file.drives) {
                (None, Some(list)) if o.drives.is_none() => list.clone(),
                _ => {
                    let data = o.data.clone().unwrap_or_else(|| DEFAULT_DATA.into());
                    drive_dirs(&data, o.drives.unwrap_or(DEFAULT_DRIVES))
                }
            }
        };
        if drives.is_empty() {
            bail!("{}: at least one drive is needed", origin("drives"));
        }
        if let Some(dup) = drives
            .iter()
            .enumerate()
            .find(|(i, d)| drives[..*i].contains(d))
        {
            bail!(
                "{}: drive {} is listed twice",
                origin("drives"),
                dup.1.display()
            );
        }
        if let Some(p) = file.parity {
            let all = cluster
                .as_ref()
                .map_or(drives.len(), |c| c.topology.drives.len());
            let per_set = storage::store::set_drive_count(all).map_err(anyhow::Error::msg)?;
            if p * 2 > per_set {
                bail!(
                    "{}: parity {p} is more than half of the {per_set} drives of an erasure set",
                    origin("parity")
                );
            }
        }
        let user = env("STRATA_ROOT_USER").or(file.root_user.clone());
        let password = env("STRATA_ROOT_PASSWORD").or(file.root_password.clone());
        let default_credentials = user.is_none() && password.is_none();
        let root_user = user.unwrap_or_else(|| DEFAULT_USER.into());
        let root_password = password.unwrap_or_else(|| DEFAULT_PASSWORD.into());
        if root_user.len() < 3 {
            bail!(
                "{} (or STRATA_ROOT_USER): the access key must be at least 3 characters",
                origin("root_user")
            );
        }
        if root_password.len() < 8 {
            bail!(
                "{} (or STRATA_ROOT_PASSWORD): the secret key must be at least 8 characters",
                origin("root_password")
            );
        }
        let idle_timeout = match env("STRATA_IDLE_TIMEOUT") {
            Some(text) => text.parse::<u64>().ok(),
            None => Some(file.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT)),
        }
        .filter(|s| (1..=3600).contains(s))
        .with_context(|| {
            format!(
                "{} (or STRATA_IDLE_TIMEOUT): the idle timeout must be 1 to 3600 seconds",
                origin("idle_timeout")
            )
        })?;
        let min_free = match env("STRATA_MIN_FREE") {
            Some(text) => Some(text.parse::<u64>().with_context(|| {
                format!(
                    "STRATA_MIN_FREE: '{text}' is not a number of bytes (or set {})",
                    origin("min_free")
                )
            })?),
            None => file.min_free,
        };
        let day_seconds = match env("STRATA_LIFECYCLE_DAY_SECONDS") {
            Some(text) => text.parse::<u64>().ok(),
            None => Some(file.lifecycle_day_seconds.unwrap_or(86_400)),
        }
        .filter(|s| (1..=86_400).contains(s))
        .with_context(|| {
            format!(
                "{} (or STRATA_LIFECYCLE_DAY_SECONDS): a lifecycle day is 1 to 86400 seconds",
                origin("lifecycle_day_seconds")
            )
        })?;
        let replication_min_backoff_ms = match env("STRATA_REPLICATION_MIN_BACKOFF_MS") {
            Some(text) => text.parse::<u64>().ok(),
            None => Some(file.replication_min_backoff_ms.unwrap_or(1000)),
        }
        .filter(|ms| (1..=300_000).contains(ms))
        .with_context(|| {
            format!(
                "{} (or STRATA_REPLICATION_MIN_BACKOFF_MS): 1 to 300000 milliseconds",
                origin("replication_min_backoff_ms")
            )
        })?;
        let schedule = file
            .lifecycle_schedule
            .clone()
            .unwrap_or_else(|| lifecycle::scanner::DEFAULT_SCHEDULE.into());
        lifecycle::scanner::check_schedule(&schedule)
            .map_err(|e| anyhow::anyhow!("{}: {e}", origin("lifecycle_schedule")))?;
        let rate = match env("STRATA_LIFECYCLE_RATE") {
            Some(text) => text.parse::<u32>().ok(),
            None => Some(file.lifecycle_rate.unwrap_or(lifecycle::scanner::DEFAULT_RATE)),
        }
        .filter(|r| *r > 0)
        .with_context(|| {
            format!(
                "{} (or STRATA_LIFECYCLE_RATE): the rate is a positive number of actions per second",
                origin("lifecycle_rate")
            )
        })?;
        let pause = match env("STRATA_LIFECYCLE_SCAN_PAUSE") {
            Some(text) => text.parse::<f64>().ok(),
            None => Some(
                file.lifecycle_scan_pause
                    .unwrap_or(lifecycle::scanner::DEFAULT_PAUSE),
            ),
        }
        .filter(|p| (0.0..=100.0).contains(p))
        .with_context(|| {
            format!(
                "{} (or STRATA_LIFECYCLE_SCAN_PAUSE): the pause is 0 to 100 seconds per second of scanning",
                origin("lifecycle_scan_pause")
            )
        })?;
        for tier in &file.tiers {
            tier.validate()
                .map_err(|e| anyhow::anyhow!("{}: {e}", origin("tiers")))?;
        }
        let domains = file
            .domains
            .clone()
            .unwrap_or_else(|| vec!["localhost".into()]);
        Ok(Config {
            address,
            root_user,
            root_password,
            drives,
            parity: file.parity,
            domains,
            idle_timeout: std::time::Duration::from_secs(idle_timeout),
            min_free,
            default_credentials,
            lifecycle: lifecycle::scanner::Settings {
                clock: lifecycle::Clock {
                    day_ns: day_seconds as i64 * 1_000_000_000,
                },
                schedule,
                rate,
                pause,
            },
            tiers: file.tiers.clone(),
            replication_min_backoff: std::time::Duration::from_millis(replication_min_backoff_ms),
            cluster,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn with_file(text: &str) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.toml");
        std::fs::write(&path, text).unwrap();
        Config::resolve(
            &Overrides {
                config: Some(path),
                ..Default::default()
            },
            no_env,
        )
    }

    #[test]
    fn a_topology_names_this_nodes_drives_and_needs_a_secret() {
        let endpoints = vec!["http://127.0.0.1:{30001...30004}/x/d{1...2}".to_string()];
        let given = |address: &str| Overrides {
            address: Some(address.into()),
            endpoints: endpoints.clone(),
            ..Default::default()
        };
        let secret = |k: &str| (k == "STRATA_CLUSTER_SECRET").then(|| "a-long-secret".to_string());
        let c = Config::resolve(&given("127.0.0.1:30002"), secret).unwrap();
        let cluster = c.cluster.unwrap();
        assert_eq!(cluster.me, "127.0.0.1:30002");
        assert_eq!(cluster.topology.drives.len(), 8);
        assert_eq!(
            c.drives,
            vec![PathBuf::from("/x/d1"), PathBuf::from("/x/d2")]
        );
        let e = Config::resolve(&given("127.0.0.1:30002"), no_env).unwrap_err();
        assert!(e.to_string().contains("STRATA_CLUSTER_SECRET"), "{e}");
        let e = Config::resolve(&given("127.0.0.1:39999"), secret).unwrap_err();
        assert!(e.to_string().contains("not a node of the topology"), "{e}");
    }

    #[test]
    fn the_cluster_section_gives_the_topology() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.toml");
        std::fs::write(
            &path,
            "address = \"10.0.0.3:9000\"\n[cluster]\nendpoints = [\"http://10.0.0.{1...4}:9000/mnt/disk{1...2}\"]\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(path),
            ..Default::default()
        };
        let secret = |k: &str| (k == "STRATA_CLUSTER_SECRET").then(|| "a-long-secret".to_string());
        let c = Config::resolve(&o, secret).unwrap();
        assert_eq!(c.cluster.unwrap().me, "10.0.0.3:9000");
        assert_eq!(
            c.drives,
            vec![PathBuf::from("/mnt/disk1"), PathBuf::from("/mnt/disk2")]
        );
    }

    #[test]
    fn defaults_are_one_node_four_drives_under_data() {
        let c = Config::resolve(&Overrides::default(), no_env).unwrap();
        assert_eq!(c.address.to_string(), DEFAULT_ADDRESS);
        assert_eq!(c.drives, drive_dirs(Path::new("./data"), 4));
        assert!(c.default_credentials);
    }

    #[test]
    fn flags_override_file_and_env_overrides_credentials() {
        let env = |k: &str| (k == "STRATA_ROOT_USER").then(|| "someone".to_string());
        let o = Overrides {
            address: Some("127.0.0.1:1234".into()),
            data: Some("/tmp/x".into()),
            drives: Some(6),
            config: None,
            endpoints: Vec::new(),
        };
        let c = Config::resolve(&o, env).unwrap();
        assert_eq!(c.address.port(), 1234);
        assert_eq!(c.drives.len(), 6);
        assert_eq!(c.root_user, "someone");
        assert!(!c.default_credentials);
    }

    #[test]
    fn tiers_come_from_the_file_and_are_checked() {
        let c = with_file(
            "[[tiers]]\nname = \"COLD\"\nkind = \"gcs\"\nendpoint = \"http://127.0.0.1:4443\"\nbucket = \"archive\"\nstorage_class = \"NEARLINE\"",
        )
        .unwrap();
        assert_eq!(c.tiers.len(), 1);
        assert_eq!(c.tiers[0].kind(), tiering::Kind::Gcs);
        let e = with_file("[[tiers]]\nname = \"cold\"\nbucket = \"b\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`tiers`") && e.contains("upper-case"), "{e}");
        let e = with_file("[[tiers]]\nname = \"COLD\"\nbucket = \"b\"\nsecret = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("secret"), "{e}");
    }

    #[test]
    fn file_errors_name_the_key() {
        let e = with_file("adress = \"x\"").unwrap_err().to_string();
        assert!(e.contains("adress"), "{e}");
        let e = with_file("address = \"nope\"").unwrap_err().to_string();
        assert!(e.contains("`address`"), "{e}");
        let e = with_file("drives = [\"/a\", \"/b\", \"/c\", \"/d\"]\nparity = 3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`parity`"), "{e}");
        let e = with_file("root_password = \"short\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("root_password"), "{e}");
        let e = with_file("parity = \"two\"").unwrap_err().to_string();
        assert!(e.contains("parity"), "{e}");
        let c = with_file("drives = [\"/a\", \"/b\"]\naddress = \"127.0.0.1:9999\"").unwrap();
        assert_eq!(c.drives.len(), 2);
        let e = with_file("idle_timeout = 0").unwrap_err().to_string();
        assert!(e.contains("`idle_timeout`"), "{e}");
        assert_eq!(
            with_file("idle_timeout = 5")
                .unwrap()
                .idle_timeout
                .as_secs(),
            5
        );
        assert_eq!(with_file("min_free = 1000").unwrap().min_free, Some(1000));
        let e = with_file("min_free = -1").unwrap_err().to_string();
        assert!(e.contains("min_free"), "{e}");
    }
}
