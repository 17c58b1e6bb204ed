//! A deployment's static topology from MinIO-style endpoint arguments: each argument is
//! `http://HOST:PORT/PATH` with optional numeric ellipses `{a...b}` in the host, port and path
//! (`http://10.0.0.{1...4}:9000/mnt/disk{1...2}`), several arguments allowed; the drives are
//! grouped into erasure sets spread across nodes as evenly as possible. Pure: no I/O.
//!
//! Ellipses follow MinIO's (`minio/pkg/ellipses`): `{1...4}` is 1, 2, 3, 4; a range written with
//! leading zeros keeps its width (`{01...16}` is 01 … 16); several ellipses in one argument give
//! every combination, the leftmost changing slowest.

use std::collections::BTreeMap;

/// One drive of the deployment: the node that serves it and its path there.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// The drive's directory on its node (absolute).
    pub path: String,
}

impl Endpoint {
    /// The node that serves the drive, `HOST:PORT`.
    pub fn node(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}:{}{}",
            self.scheme, self.host, self.port, self.path
        )
    }
}

/// Most values one ellipsis may stand for (a typo like `{1...100000}` is refused).
const MAX_RANGE: u64 = 1024;

/// Expands the ellipses of one argument, leftmost changing slowest.
pub fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('{') else {
        if pattern.contains('}') {
            return Err(format!("'{pattern}': a '}}' without its '{{'"));
        }
        return Ok(vec![pattern.to_owned()]);
    };
    let close = pattern[open..]
        .find('}')
        .map(|i| open + i)
        .ok_or_else(|| format!("'{pattern}': a '{{' without its '}}'"))?;
    let inner = &pattern[open + 1..close];
    let (from, to) = inner.split_once("...").ok_or_else(|| {
        format!("'{pattern}': an ellipsis is written {{FIRST...LAST}}, e.g. {{1...4}}")
    })?;
    let number = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("'{pattern}': '{s}' in {{{inner}}} is not a number"))
    };
    let (first, last) = (number(from)?, number(to)?);
    if first > last {
        return Err(format!("'{pattern}': {{{inner}}} counts down"));
    }
    if last - first >= MAX_RANGE {
        return Err(format!(
            "'{pattern}': {{{inner}}} stands for more than {MAX_RANGE} values"
        ));
    }
    // A range written with leading zeros keeps its width.
    let width = if from.len() > 1 && from.starts_with('0') {
        from.len()
    } else {
        0
    };
    let rest = expand(&pattern[close + 1..])?;
    let mut out = Vec::new();
    for n in first..=last {
        for tail in &rest {
            out.push(format!("{}{n:0width$}{tail}", &pattern[..open]));
        }
    }
    Ok(out)
}

/// Parses one expanded argument, `http(s)://HOST:PORT/PATH`.
pub fn parse_endpoint(text: &str) -> Result<Endpoint, String> {
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| format!("'{text}' is not http://HOST:PORT/PATH"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("'{text}': the scheme is http or https"));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => return Err(format!("'{text}' names no drive path")),
    };
    if path.len() < 2 {
        return Err(format!("'{text}' names no drive path"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("'{text}': '{p}' is not a port"))?,
        ),
        None => (authority, if scheme == "https" { 443 } else { 80 }),
    };
    if host.is_empty() {
        return Err(format!("'{text}' names no host"));
    }
    Ok(Endpoint {
        scheme: scheme.to_owned(),
        host: host.to_owned(),
        port,
        path: path.trim_end_matches('/').to_owned(),
    })
}

/// The deployment: every drive in argument order, and the erasure sets as positions in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub drives: Vec<Endpoint>,
    /// Each set's drives, as indexes into `drives`, in shard order.
    pub sets: Vec<Vec<usize>>,
}

impl Topology {
    /// Builds the topology from the server's endpoint arguments. Refuses a drive named twice,
    /// mixed schemes, and a drive count that cannot be split into equal sets of 4 to 16.
    pub fn from_args(args: &[String]) -> Result<Self, String> {
        let mut drives = Vec::new();
        for arg in args {
            for text in expand(arg)? {
                drives.push(parse_endpoint(&text)?);
            }
        }
        if drives.is_empty() {
            return Err("no drives given".into());
        }
        let mut seen = std::collections::HashSet::new();
        for d in &drives {
            if !seen.insert((d.node(), d.path.clone())) {
                return Err(format!("drive {d} is named twice"));
            }
        }
        if drives.iter().any(|d| d.scheme != drives[0].scheme) {
            return Err("every endpoint must use the same scheme (http or https)".into());
        }
        let size = crate::store::set_drive_count(drives.len())?;
        if drives.len() > 1 && size < 4 && nodes(&drives) > 1 {
            return Err(format!(
                "{} drives on {} nodes are too few: a multi-node deployment needs at least 4 drives",
                drives.len(),
                nodes(&drives)
            ));
        }
        let sets = spread(&drives, size);
        Ok(Self { drives, sets })
    }

    /// The distinct nodes, in the order they first appear.
    pub fn nodes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for d in &self.drives {
            if !out.contains(&d.node()) {
                out.push(d.node());
            }
        }
        out
    }

    /// A short digest of every drive in order: two nodes agree on the deployment's layout
    /// exactly when their fingerprints are equal (16 hex digits).
    pub fn fingerprint(&self) -> String {
        let text: Vec<String> = self.drives.iter().map(Endpoint::to_string).collect();
        format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(text.join("\n").as_bytes())
        )
    }

    /// Every drive in order, separated by spaces (for the message refusing another topology).
    pub fn describe(&self) -> String {
        let text: Vec<String> = self.drives.iter().map(Endpoint::to_string).collect();
        text.join(" ")
    }

    /// The drives `node` (`HOST:PORT`) serves, as indexes into `drives`.
    pub fn drives_of(&self, node: &str) -> Vec<usize> {
        (0..self.drives.len())
            .filter(|i| self.drives[*i].node() == node)
            .collect()
    }
}

fn nodes(drives: &[Endpoint]) -> usize {
    drives
        .iter()
        .map(Endpoint::node)
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// Groups drives into sets of `size`, dealing each node's drives out in turn, so a set takes
/// its drives from as many different nodes as there are (no two shards of a set on one node
/// while there are enough nodes).
fn spread(drives: &[Endpoint], size: usize) -> Vec<Vec<usize>> {
    let mut by_node: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut order = Vec::new();
    for (i, d) in drives.iter().enumerate() {
        let node = d.node();
        if !by_node.contains_key(&node) {
            order.push(node.clone());
        }
        by_node.entry(node).or_default().push(i);
    }
    // Round-robin over nodes: node 1's first drive, node 2's first drive, ..., node 1's second.
    let mut dealt = Vec::with_capacity(drives.len());
    let deepest = by_node.values().map(Vec::len).max().unwrap_or(0);
    for depth in 0..deepest {
        for node in &order {
            if let Some(i) = by_node[node].get(depth) {
                dealt.push(*i);
            }
        }
    }
    dealt.chunks(size).map(<[usize]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ellipses_expand_in_hosts_ports_and_paths() {
        assert_eq!(expand("/d{1...3}").unwrap(), ["/d1", "/d2", "/d3"]);
        assert_eq!(
            expand("http://10.0.0.{1...2}:9000/mnt/disk{1...2}").unwrap(),
            [
                "http://10.0.0.1:9000/mnt/disk1",
                "http://10.0.0.1:9000/mnt/disk2",
                "http://10.0.0.2:9000/mnt/disk1",
                "http://10.0.0.2:9000/mnt/disk2",
            ]
        );
        assert_eq!(
            expand("http://127.0.0.1:{9001...9002}/x").unwrap(),
            ["http://127.0.0.1:9001/x", "http://127.0.0.1:9002/x"]
        );
        assert_eq!(expand("/d{08...10}").unwrap(), ["/d08", "/d09", "/d10"]);
        assert_eq!(expand("/plain").unwrap(), ["/plain"]);
    }

    #[test]
    fn bad_ellipses_are_refused_with_the_reason() {
        assert!(expand("/d{1..3}").unwrap_err().contains("{FIRST...LAST}"));
        assert!(expand("/d{3...1}").unwrap_err().contains("counts down"));
        assert!(expand("/d{a...3}").unwrap_err().contains("not a number"));
        assert!(expand("/d{1...3").unwrap_err().contains("without its"));
        assert!(expand("/d1...3}").unwrap_err().contains("without its"));
        assert!(expand("/d{1...5000}").unwrap_err().contains("more than"));
    }

    #[test]
    fn endpoints_name_a_node_and_a_path() {
        let e = parse_endpoint("http://127.0.0.1:30001/x/n1/d1/").unwrap();
        assert_eq!(e.node(), "127.0.0.1:30001");
        assert_eq!(e.path, "/x/n1/d1");
        assert_eq!(parse_endpoint("https://h/d").unwrap().port, 443);
        assert!(parse_endpoint("ftp://h:1/d").is_err());
        assert!(parse_endpoint("http://h:1").is_err());
        assert!(parse_endpoint("http://h:port/d").is_err());
        assert!(parse_endpoint("/just/a/path").is_err());
    }

    #[test]
    fn four_nodes_of_two_drives_make_one_set_with_one_node_per_pair() {
        let t = Topology::from_args(&args(&[
            "http://127.0.0.1:30001/x/n1/d{1...2}",
            "http://127.0.0.1:30002/x/n2/d{1...2}",
            "http://127.0.0.1:30003/x/n3/d{1...2}",
            "http://127.0.0.1:30004/x/n4/d{1...2}",
        ]))
        .unwrap();
        assert_eq!(t.drives.len(), 8);
        assert_eq!(t.sets.len(), 1);
        assert_eq!(t.nodes().len(), 4);
        // Shards 0..4 on four different nodes, then 4..8 again: any node down loses two.
        let nodes: Vec<String> = t.sets[0].iter().map(|i| t.drives[*i].node()).collect();
        assert_eq!(&nodes[..4], &t.nodes()[..]);
        assert_eq!(&nodes[4..], &t.nodes()[..]);
        assert_eq!(t.drives_of("127.0.0.1:30002"), [2, 3]);
    }

    #[test]
    fn sets_spread_over_nodes_evenly_and_stay_stable() {
        // 8 nodes x 4 drives = 32 drives: two sets of 16, each with two drives per node.
        let t = Topology::from_args(&args(&["http://10.0.0.{1...8}:9000/disk{1...4}"])).unwrap();
        assert_eq!(t.sets.len(), 2);
        for set in &t.sets {
            let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
            for i in set {
                *per_node.entry(t.drives[*i].node()).or_default() += 1;
            }
            assert_eq!(per_node.len(), 8);
            assert!(per_node.values().all(|n| *n == 2), "{per_node:?}");
        }
        // 16 nodes x 1 drive: no two shards of the set on one node.
        let t = Topology::from_args(&args(&["http://10.0.0.{1...16}:9000/disk"])).unwrap();
        let nodes: std::collections::HashSet<_> =
            t.sets[0].iter().map(|i| t.drives[*i].node()).collect();
        assert_eq!(nodes.len(), 16);
        // The same arguments always give the same layout (placement depends on it).
        let again = Topology::from_args(&args(&["http://10.0.0.{1...16}:9000/disk"])).unwrap();
        assert_eq!(t, again);
    }

    #[test]
    fn impossible_topologies_are_refused() {
        assert!(
            Topology::from_args(&args(&["http://h:1/d", "http://h:1/d"]))
                .unwrap_err()
                .contains("named twice")
        );
        assert!(Topology::from_args(&args(&["http://h{1...2}:1/d"]))
            .unwrap_err()
            .contains("at least 4 drives"));
        assert!(Topology::from_args(&args(&["http://h{1...17}:1/d{1...1}"]))
            .unwrap_err()
            .contains("equal erasure sets"));
        assert!(
            Topology::from_args(&args(&["http://a:1/d{1...2}", "https://b:1/d{1...2}"]))
                .unwrap_err()
                .contains("same scheme")
        );
    }
}
