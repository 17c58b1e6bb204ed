//! Authentication of the cluster's internal RPC: every call carries the time, a nonce and an
//! HMAC-SHA256 over method, path (with query), time, nonce and the body's SHA-256, keyed by
//! the cluster secret. The receiver refuses a wrong signature, a time outside the skew window
//! and a nonce it has seen within that window (a replay). Pure apart from the clock passed in.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

/// `x-strata-rpc-time`: milliseconds since the Unix epoch.
pub const TIME_HEADER: &str = "x-strata-rpc-time";
/// `x-strata-rpc-nonce`: 32 hex digits, new for every call.
pub const NONCE_HEADER: &str = "x-strata-rpc-nonce";
/// `x-strata-rpc-signature`: hex HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "x-strata-rpc-signature";
/// The body hash of a streamed body, whose blocks carry their own bitrot hashes.
pub const UNSIGNED_BODY: &str = "UNSIGNED";

/// How far the caller's clock may be from ours, in milliseconds (as S3's 15 minutes is for
/// SigV4, shorter: nodes of one cluster run NTP).
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// Why a call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RpcAuthError {
    Missing(&'static str),
    BadSignature,
    Skewed { ours_ms: i64, theirs_ms: i64 },
    Replayed,
}

impl std::fmt::Display for RpcAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(h) => write!(f, "the internal call lacks {h}"),
            Self::BadSignature => f.write_str(
                "the internal call's signature does not match: the nodes have different cluster secrets (STRATA_CLUSTER_SECRET)",
            ),
            Self::Skewed { ours_ms, theirs_ms } => write!(
                f,
                "the caller's clock is {} s from ours (at most {} s allowed)",
                (theirs_ms - ours_ms).abs() / 1000,
                MAX_SKEW_MS / 1000
            ),
            Self::Replayed => f.write_str("the internal call was seen before (a replay)"),
        }
    }
}

/// The SHA-256 of a body, hex, as signed.
pub fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// What a call's signature covers.
fn signed_text(method: &str, path: &str, time_ms: i64, nonce: &str, body: &str) -> String {
    format!("{method}\n{path}\n{time_ms}\n{nonce}\n{body}")
}

fn signature(
    secret: &[u8],
    method: &str,
    path: &str,
    time_ms: i64,
    nonce: &str,
    body: &str,
) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(signed_text(method, path, time_ms, nonce, body).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The headers that sign a call: (name, value) pairs.
pub fn sign(
    secret: &[u8],
    method: &str,
    path: &str,
    body: &str,
    now_ms: i64,
) -> Vec<(&'static str, String)> {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let sig = signature(secret, method, path, now_ms, &nonce, body);
    vec![
        (TIME_HEADER, now_ms.to_string()),
        (NONCE_HEADER, nonce),
        (SIGNATURE_HEADER, sig),
    ]
}

/// Checks calls against the cluster secret, remembering the nonces of the skew window.
pub struct Verifier {
    secret: Vec<u8>,
    seen: Mutex<SeenNonces>,
}

/// The nonces of calls inside the skew window, by nonce and by call time (so the ones that
/// leave the window go without a scan of all: a busy node takes thousands of calls a second).
#[derive(Default)]
struct SeenNonces {
    nonces: HashSet<String>,
    by_time: BTreeSet<(i64, String)>,
}

impl Verifier {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
            seen: Mutex::new(SeenNonces::default()),
        }
    }

    /// What can be checked before a call's body is read: the headers are there and the time is
    /// inside the window (so nobody without the secret can make a node read a large body
    /// for a call that will be refused anyway, once the window has passed).
    pub fn precheck<'a>(
        &self,
        header: impl Fn(&str) -> Option<&'a str>,
        now_ms: i64,
    ) -> Result<(), RpcAuthError> {
        let time = header(TIME_HEADER).ok_or(RpcAuthError::Missing(TIME_HEADER))?;
        header(NONCE_HEADER).ok_or(RpcAuthError::Missing(NONCE_HEADER))?;
        header(SIGNATURE_HEADER).ok_or(RpcAuthError::Missing(SIGNATURE_HEADER))?;
        let time_ms: i64 = time.parse().map_err(|_| RpcAuthError::BadSignature)?;
        if (time_ms - now_ms).abs() > MAX_SKEW_MS {
            return Err(RpcAuthError::Skewed {
                ours_ms: now_ms,
                theirs_ms: time_ms,
            });
        }
        Ok(())
    }

    /// Verifies a call; `header` looks up a request header, `body` is its body hash as signed.
    pub fn verify<'a>(
        &self,
        method: &str,
        path: &str,
        body: &str,
        header: impl Fn(&str) -> Option<&'a str>,
        now_ms: i64,
    ) -> Result<(), RpcAuthError> {
        let time = header(TIME_HEADER).ok_or(RpcAuthError::Missing(TIME_HEADER))?;
        let nonce = header(NONCE_HEADER).ok_or(RpcAuthError::Missing(NONCE_HEADER))?;
        let given = header(SIGNATURE_HEADER).ok_or(RpcAuthError::Missing(SIGNATURE_HEADER))?;
        let time_ms: i64 = time.parse().map_err(|_| RpcAuthError::BadSignature)?;
        // Compared in constant time, by the MAC's own check.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(signed_text(method, path, time_ms, nonce, body).as_bytes());
        let given = hex::decode(given).map_err(|_| RpcAuthError::BadSignature)?;
        mac.verify_slice(&given)
            .map_err(|_| RpcAuthError::BadSignature)?;
        if (time_ms - now_ms).abs() > MAX_SKEW_MS {
            return Err(RpcAuthError::Skewed {
                ours_ms: now_ms,
                theirs_ms: time_ms,
            });
        }
        let mut seen = self.seen.lock().expect("lock");
        // Nonces older than the window can go: their calls are refused as skewed anyway.
        while let Some(oldest) = seen.by_time.first() {
            if oldest.0 >= now_ms - MAX_SKEW_MS {
                break;
            }
            let (_, gone) = seen.by_time.pop_first().expect("first exists");
            seen.nonces.remove(&gone);
        }
        if !seen.nonces.insert(nonce.to_owned()) {
            return Err(RpcAuthError::Replayed);
        }
        seen.by_time.insert((time_ms, nonce.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(headers: &'a [(&'static str, String)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    #[test]
    fn a_signed_call_passes_once() {
        let v = Verifier::new(b"cluster-secret");
        let body = body_hash(b"shard block");
        let h = sign(
            b"cluster-secret",
            "PUT",
            "/strata/rpc/v1/commit?d=1",
            &body,
            1_000_000,
        );
        assert_eq!(
            v.verify(
                "PUT",
                "/strata/rpc/v1/commit?d=1",
                &body,
                lookup(&h),
                1_000_500
            ),
            Ok(())
        );
        assert_eq!(
            v.verify(
                "PUT",
                "/strata/rpc/v1/commit?d=1",
                &body,
                lookup(&h),
                1_000_600
            ),
            Err(RpcAuthError::Replayed)
        );
    }

    #[test]
    fn another_secret_a_changed_call_or_a_skewed_clock_is_refused() {
        let v = Verifier::new(b"cluster-secret");
        let body = body_hash(b"x");
        let h = sign(b"other-secret", "GET", "/p", &body, 0);
        let e = v.verify("GET", "/p", &body, lookup(&h), 0).unwrap_err();
        assert_eq!(e, RpcAuthError::BadSignature);
        assert!(e.to_string().contains("STRATA_CLUSTER_SECRET"));
        let h = sign(b"cluster-secret", "GET", "/p", &body, 0);
        assert_eq!(
            v.verify("DELETE", "/p", &body, lookup(&h), 0),
            Err(RpcAuthError::BadSignature)
        );
        assert_eq!(
            v.verify("GET", "/q", &body, lookup(&h), 0),
            Err(RpcAuthError::BadSignature)
        );
        assert_eq!(
            v.verify("GET", "/p", &body_hash(b"y"), lookup(&h), 0),
            Err(RpcAuthError::BadSignature)
        );
        let late = MAX_SKEW_MS + 1;
        assert!(matches!(
            v.verify("GET", "/p", &body, lookup(&h), late),
            Err(RpcAuthError::Skewed { .. })
        ));
        assert_eq!(
            v.verify("GET", "/p", &body, |_| None, 0),
            Err(RpcAuthError::Missing(TIME_HEADER))
        );
    }

    #[test]
    fn a_call_for_one_node_is_refused_by_another_and_late_calls_before_their_body() {
        let v = Verifier::new(b"cluster-secret");
        let body = body_hash(b"x");
        // Nodes sign and check `HOST:PORT` + path: a call captured on its way to node A
        // cannot be replayed to node B.
        let h = sign(
            b"cluster-secret",
            "POST",
            "10.0.0.1:9000/strata/rpc/v1/lock",
            &body,
            0,
        );
        assert_eq!(
            v.verify(
                "POST",
                "10.0.0.2:9000/strata/rpc/v1/lock",
                &body,
                lookup(&h),
                0
            ),
            Err(RpcAuthError::BadSignature)
        );
        assert!(v.precheck(lookup(&h), 0).is_ok());
        assert!(matches!(
            v.precheck(lookup(&h), MAX_SKEW_MS + 1),
            Err(RpcAuthError::Skewed { .. })
        ));
        assert_eq!(
            v.precheck(|_| None, 0),
            Err(RpcAuthError::Missing(TIME_HEADER))
        );
    }
}
