//! Flexible checksums (`x-amz-checksum-*`): which one a request asks for, computing it while
//! the body streams, and the composite form of multipart objects.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use http::HeaderMap;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::Checksum as _;
use s3s::dto::Checksum;

/// A checksum algorithm S3 supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

pub const ALL: [Algorithm; 5] = [
    Algorithm::Crc32,
    Algorithm::Crc32c,
    Algorithm::Crc64Nvme,
    Algorithm::Sha1,
    Algorithm::Sha256,
];

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        ALL.into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    fn from_header(name: &str) -> Option<Self> {
        ALL.into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(name.trim()))
    }

    /// A hasher computing only this algorithm.
    pub fn hasher(self) -> ChecksumHasher {
        let mut h = ChecksumHasher::default();
        match self {
            Algorithm::Crc32 => h.crc32 = Some(s3s::crypto::Crc32::new()),
            Algorithm::Crc32c => h.crc32c = Some(s3s::crypto::Crc32c::new()),
            Algorithm::Crc64Nvme => h.crc64nvme = Some(s3s::crypto::Crc64Nvme::new()),
            Algorithm::Sha1 => h.sha1 = Some(s3s::crypto::Sha1::new()),
            Algorithm::Sha256 => h.sha256 = Some(s3s::crypto::Sha256::new()),
        }
        h
    }

    /// This algorithm's value in a set of checksums.
    pub fn pick(self, c: &Checksum) -> Option<String> {
        match self {
            Algorithm::Crc32 => c.checksum_crc32.clone(),
            Algorithm::Crc32c => c.checksum_crc32c.clone(),
            Algorithm::Crc64Nvme => c.checksum_crc64nvme.clone(),
            Algorithm::Sha1 => c.checksum_sha1.clone(),
            Algorithm::Sha256 => c.checksum_sha256.clone(),
        }
    }

    /// The CRC behind this algorithm, with its width in bytes; `None` for the SHA digests,
    /// which cannot be combined across parts.
    fn crc(self) -> Option<(crc_fast::CrcAlgorithm, usize)> {
        match self {
            Algorithm::Crc32 => Some((crc_fast::CrcAlgorithm::Crc32IsoHdlc, 4)),
            Algorithm::Crc32c => Some((crc_fast::CrcAlgorithm::Crc32Iscsi, 4)),
            Algorithm::Crc64Nvme => Some((crc_fast::CrcAlgorithm::Crc64Nvme, 8)),
            Algorithm::Sha1 | Algorithm::Sha256 => None,
        }
    }

    /// Whether a multipart upload can carry a checksum of the whole object.
    pub fn has_full_object_form(self) -> bool {
        self.crc().is_some()
    }

    /// Digest of `data` (raw bytes).
    fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = self.hasher();
        h.update(data);
        let value = self.pick(&h.finalize()).expect("enabled algorithm");
        B64.decode(value).expect("our own base64")
    }
}

/// What a write request asks to be checked: the algorithm, and the value when it came in a
/// header (`None` when it will come in the trailer or was only named).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requested {
    pub algorithm: Algorithm,
    pub expected: Option<String>,
}

/// Reads the checksum a request carries or announces.
pub fn requested(headers: &HeaderMap) -> Result<Option<Requested>, String> {
    let mut found = None;
    for a in ALL {
        if let Some(v) = headers.get(a.header()) {
            if found.is_some() {
                return Err("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.".into());
            }
            let v = v
                .to_str()
                .map_err(|_| "checksum header is not ASCII".to_string())?
                .to_owned();
            found = Some(Requested {
                algorithm: a,
                expected: Some(v),
            });
        }
    }
    if found.is_some() {
        return Ok(found);
    }
    if let Some(trailer) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        if let Some(a) = Algorithm::from_header(trailer) {
            return Ok(Some(Requested {
                algorithm: a,
                expected: None,
            }));
        }
    }
    for name in ["x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            let a = Algorithm::from_name(v)
                .ok_or_else(|| format!("unsupported checksum algorithm {v}"))?;
            return Ok(Some(Requested {
                algorithm: a,
                expected: None,
            }));
        }
    }
    Ok(None)
}

/// Whether a request carries Content-MD5 or a checksum value, in a header or an announced
/// trailer (`x-amz-checksum-type` or `-algorithm` alone carry no value to check).
pub fn has_integrity_header(headers: &HeaderMap) -> bool {
    headers.contains_key("content-md5")
        || ALL.iter().any(|a| headers.contains_key(a.header()))
        || headers
            .get("x-amz-trailer")
            .and_then(|v| v.to_str().ok())
            .and_then(Algorithm::from_header)
            .is_some()
}

/// The operations AWS will not run without an integrity check of their body (DeleteObjects
/// and the object-lock settings) refuse a request that carries none.
pub fn require_integrity(headers: &HeaderMap) -> s3s::S3Result<()> {
    if has_integrity_header(headers) {
        return Ok(());
    }
    Err(s3s::s3_error!(
        InvalidRequest,
        "Missing required header for this request: Content-MD5 OR x-amz-checksum-*"
    ))
}

/// The value a trailer carried for `algorithm`.
pub fn from_trailer(trailers: Option<&HeaderMap>, algorithm: Algorithm) -> Option<String> {
    trailers?
        .get(algorithm.header())?
        .to_str()
        .ok()
        .map(str::to_owned)
}

/// The composite checksum of a multipart object: the checksum of the concatenated part
/// checksums, followed by `-N`.
pub fn composite(algorithm: Algorithm, parts: &[String]) -> Option<String> {
    let mut joined = Vec::new();
    for p in parts {
        joined.extend(B64.decode(p).ok()?);
    }
    Some(format!(
        "{}-{}",
        B64.encode(algorithm.digest(&joined)),
        parts.len()
    ))
}

/// The checksum of a whole multipart object, from each part's CRC and size: the CRC of the
/// concatenated parts, as if the object had been uploaded in one piece.
pub fn full_object(algorithm: Algorithm, parts: &[(String, u64)]) -> Option<String> {
    let (crc, width) = algorithm.crc()?;
    let mut combined: Option<u64> = None;
    for (value, len) in parts {
        let bytes = B64.decode(value).ok().filter(|b| b.len() == width)?;
        let part = bytes.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
        combined = Some(match combined {
            None => part,
            Some(before) => crc_fast::checksum_combine(crc, before, part, *len),
        });
    }
    let bytes = combined?.to_be_bytes();
    Some(B64.encode(&bytes[8 - width..]))
}

/// Copies a set of checksums into an S3 output or result that has the five `checksum_*`
/// fields (the s3s types share the field names but no trait).
macro_rules! fill_checksums {
    ($out:expr, $checksums:expr) => {{
        let c: s3s::dto::Checksum = $checksums;
        $out.checksum_crc32 = c.checksum_crc32;
        $out.checksum_crc32c = c.checksum_crc32c;
        $out.checksum_crc64nvme = c.checksum_crc64nvme;
        $out.checksum_sha1 = c.checksum_sha1;
        $out.checksum_sha256 = c.checksum_sha256;
    }};
}
pub(crate) use fill_checksums;

/// The five `checksum_*` fields of an S3 input or part, as one set of checksums.
macro_rules! checksums_of {
    ($from:expr) => {{
        let f = &$from;
        s3s::dto::Checksum {
            checksum_crc32: f.checksum_crc32.clone(),
            checksum_crc32c: f.checksum_crc32c.clone(),
            checksum_crc64nvme: f.checksum_crc64nvme.clone(),
            checksum_sha1: f.checksum_sha1.clone(),
            checksum_sha256: f.checksum_sha256.clone(),
            ..Default::default()
        }
    }};
}
pub(crate) use checksums_of;

/// Response checksum fields with only `algorithm`'s set to `value`.
pub fn single(algorithm: Algorithm, value: String) -> Checksum {
    let mut c = Checksum::default();
    let slot = match algorithm {
        Algorithm::Crc32 => &mut c.checksum_crc32,
        Algorithm::Crc32c => &mut c.checksum_crc32c,
        Algorithm::Crc64Nvme => &mut c.checksum_crc64nvme,
        Algorithm::Sha1 => &mut c.checksum_sha1,
        Algorithm::Sha256 => &mut c.checksum_sha256,
    };
    *slot = Some(value);
    c
}

/// Response checksum fields for a checksum stored with an object.
pub fn of_stored(stored: &storage::meta::StoredChecksum) -> Checksum {
    match Algorithm::from_name(&stored.algorithm) {
        Some(a) => single(a, stored.value.clone()),
        None => Checksum::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // CRC32 of "hello" is 0x3610a686; SHA256 of "" is e3b0…
        let mut h = Algorithm::Crc32.hasher();
        h.update(b"hello");
        assert_eq!(
            Algorithm::Crc32.pick(&h.finalize()).unwrap(),
            B64.encode(0x3610a686u32.to_be_bytes())
        );
        let h = Algorithm::Sha256.hasher();
        assert_eq!(
            Algorithm::Sha256.pick(&h.finalize()).unwrap(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn request_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(requested(&h).unwrap(), None);
        h.insert("x-amz-trailer", "x-amz-checksum-crc32c".parse().unwrap());
        assert_eq!(
            requested(&h).unwrap(),
            Some(Requested {
                algorithm: Algorithm::Crc32c,
                expected: None
            })
        );
        h.insert("x-amz-checksum-sha1", "abc".parse().unwrap());
        assert_eq!(
            requested(&h).unwrap().unwrap().expected.as_deref(),
            Some("abc")
        );
        h.insert("x-amz-checksum-crc32", "abc".parse().unwrap());
        assert!(requested(&h).is_err());
    }

    #[test]
    fn full_object_checksums_equal_the_checksum_of_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for a in [Algorithm::Crc32, Algorithm::Crc32c, Algorithm::Crc64Nvme] {
            let whole = B64.encode(a.digest(&data));
            let parts: Vec<(String, u64)> = [&data[..1], &data[1..60_000], &data[60_000..]]
                .iter()
                .map(|p| (B64.encode(a.digest(p)), p.len() as u64))
                .collect();
            assert_eq!(
                full_object(a, &parts).as_deref(),
                Some(whole.as_str()),
                "{a:?}"
            );
            assert_eq!(full_object(a, &parts[..1]), Some(parts[0].0.clone()));
        }
        let sha = (B64.encode([0u8; 32]), 1);
        assert_eq!(full_object(Algorithm::Sha256, &[sha]), None);
        assert_eq!(full_object(Algorithm::Crc32, &[("AAAA".into(), 1)]), None);
    }

    #[test]
    fn integrity_needs_a_value_to_check() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-checksum-type", "FULL_OBJECT".parse().unwrap());
        h.insert("x-amz-sdk-checksum-algorithm", "CRC32".parse().unwrap());
        assert!(!has_integrity_header(&h));
        h.insert("x-amz-trailer", "x-amz-checksum-crc32".parse().unwrap());
        assert!(has_integrity_header(&h));
        let mut h = HeaderMap::new();
        h.insert("x-amz-checksum-sha256", "abc".parse().unwrap());
        assert!(has_integrity_header(&h));
        assert!(require_integrity(&HeaderMap::new()).is_err());
    }

    #[test]
    fn composite_counts_parts() {
        let c = composite(Algorithm::Crc32, &["AAAAAA==".into(), "AAAAAQ==".into()]).unwrap();
        assert!(c.ends_with("-2"));
        assert!(composite(Algorithm::Crc32, &["not base64!".into()]).is_none());
    }
}
