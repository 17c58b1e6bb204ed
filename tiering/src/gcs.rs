//! Google Cloud Storage tiers over the JSON API (`/storage/v1`, `/upload/storage/v1`):
//! objects below one chunk in a single multipart upload, larger ones through a resumable
//! upload in fixed chunks (bounded memory); ranged reads with `alt=media`; metadata and
//! delete. Credentials: a service-account key file through Google's `google-cloud-auth`, or
//! none (the emulators accept anonymous calls). The MD5 GCS computes is compared with ours.

use crate::config::TierConfig;
use crate::remote::{next_part, ByteStream, RemoteHead, RemoteTier, TierError, Written};
use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use google_cloud_auth::credentials::{anonymous, service_account, CacheableResource, Credentials};
use reqwest::{StatusCode, Url};

/// The resumable chunk (a multiple of 256 KiB, as GCS requires): memory per transition.
pub const CHUNK_SIZE: usize = 16 << 20;

pub struct GcsTier {
    http: reqwest::Client,
    endpoint: Url,
    bucket: String,
    prefix: String,
    class: Option<String>,
    credentials: Credentials,
}

impl GcsTier {
    pub fn new(cfg: &TierConfig) -> Result<Self, String> {
        let endpoint = cfg
            .endpoint
            .as_deref()
            .unwrap_or("https://storage.googleapis.com");
        let endpoint = Url::parse(endpoint).map_err(|e| format!("endpoint {endpoint}: {e}"))?;
        let credentials = match &cfg.credentials {
            None => anonymous::Builder::new().build(),
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("credentials file {file}: {e}"))?;
                let key: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| format!("credentials file {file}: {e}"))?;
                service_account::Builder::new(key)
                    .build()
                    .map_err(|e| format!("credentials file {file}: {e}"))?
            }
        };
        Ok(Self {
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(10))
                // A call whose answer (or next bytes) never comes must not hold a worker.
                .read_timeout(std::time::Duration::from_secs(120))
                .build()
                .map_err(|e| e.to_string())?,
            endpoint,
            bucket: cfg.bucket.clone(),
            prefix: cfg.prefix.clone(),
            class: cfg.storage_class.clone(),
            credentials,
        })
    }

    /// `{endpoint}/{segments…}`, each segment escaped (an object name's `/` too).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.endpoint.clone();
        url.path_segments_mut()
            .expect("http URLs have paths")
            .pop_if_empty()
            .extend(segments);
        url
    }

    fn object_url(&self, key: &str) -> Url {
        let name = format!("{}{key}", self.prefix);
        self.url(&["storage", "v1", "b", &self.bucket, "o", &name])
    }

    fn upload_url(&self, kind: &str, key: &str) -> Url {
        let mut url = self.url(&["upload", "storage", "v1", "b", &self.bucket, "o"]);
        url.query_pairs_mut()
            .append_pair("uploadType", kind)
            .append_pair("name", &format!("{}{key}", self.prefix));
        url
    }

    async fn auth(&self) -> Result<http::HeaderMap, TierError> {
        match self.credentials.headers(http::Extensions::new()).await {
            Ok(CacheableResource::New { data, .. }) => Ok(data),
            Ok(CacheableResource::NotModified) => Ok(http::HeaderMap::new()),
            Err(e) => Err(TierError::Refused(format!("GCS credentials: {e}"))),
        }
    }

    fn metadata(&self, key: &str) -> serde_json::Value {
        let mut m = serde_json::json!({ "name": format!("{}{key}", self.prefix) });
        if let Some(c) = &self.class {
            m["storageClass"] = c.clone().into();
        }
        m
    }

    /// One request: a `multipart/related` body of the metadata and the bytes.
    async fn put_small(&self, key: &str, bytes: Bytes) -> Result<serde_json::Value, TierError> {
        let boundary = format!("strata-{}", uuid::Uuid::new_v4().simple());
        let mut body = Vec::with_capacity(bytes.len() + 512);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{}\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n",
                self.metadata(key)
            )
            .as_bytes(),
        );
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let resp = self
            .http
            .post(self.upload_url("multipart", key))
            .headers(self.auth().await?)
            .header(
                "content-type",
                format!("multipart/related; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        json(resp).await
    }

    /// A resumable upload: the session, then `CHUNK_SIZE` chunks, the last one naming the
    /// total size.
    async fn put_resumable(
        &self,
        key: &str,
        mut body: ByteStream,
        size: u64,
    ) -> Result<serde_json::Value, TierError> {
        let resp = self
            .http
            .post(self.upload_url("resumable", key))
            .headers(self.auth().await?)
            .header("content-type", "application/json; charset=UTF-8")
            .header("x-upload-content-length", size.to_string())
            .body(self.metadata(key).to_string())
            .send()
            .await
            .map_err(unreachable)?;
        let resp = ok(resp).await?;
        let session = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| Url::parse(l).ok())
            .ok_or_else(|| TierError::Unavailable("the resumable upload has no Location".into()))?;
        let mut carry = Bytes::new();
        let mut sent = 0u64;
        loop {
            let chunk = next_part(&mut body, &mut carry, CHUNK_SIZE).await?;
            let end = sent + chunk.len() as u64;
            if end > size || (chunk.len() < CHUNK_SIZE && end != size) {
                return Err(TierError::Source(format!(
                    "the version has {end} bytes or more, not {size}"
                )));
            }
            let resp = self
                .http
                .put(session.clone())
                .headers(self.auth().await?)
                .header(
                    "content-range",
                    format!("bytes {sent}-{}/{size}", end.saturating_sub(1)),
                )
                .body(chunk)
                .send()
                .await
                .map_err(unreachable)?;
            if end == size {
                return json(resp).await;
            }
            if resp.status() != StatusCode::PERMANENT_REDIRECT {
                return Err(error_of(resp).await);
            }
            sent = end;
        }
    }
}

#[async_trait]
impl RemoteTier for GcsTier {
    async fn put(&self, key: &str, mut body: ByteStream, size: u64) -> Result<Written, TierError> {
        let object = if size < CHUNK_SIZE as u64 {
            let bytes = next_part(&mut body, &mut Bytes::new(), size as usize).await?;
            if bytes.len() as u64 != size {
                return Err(TierError::Source(format!(
                    "the version has {} bytes, not {size}",
                    bytes.len()
                )));
            }
            self.put_small(key, bytes).await?
        } else {
            self.put_resumable(key, body, size).await?
        };
        let md5 = object["md5Hash"]
            .as_str()
            .and_then(|m| base64::engine::general_purpose::STANDARD.decode(m).ok())
            .and_then(|b| <[u8; 16]>::try_from(b).ok());
        Ok(Written {
            etag: object["generation"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| object["generation"].as_i64().map(|g| g.to_string())),
            md5,
        })
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<ByteStream, TierError> {
        let mut url = self.object_url(key);
        url.query_pairs_mut().append_pair("alt", "media");
        let resp = self
            .http
            .get(url)
            .headers(self.auth().await?)
            .header("range", format!("bytes={start}-{}", end - 1))
            .send()
            .await
            .map_err(unreachable)?;
        let resp = ok(resp).await?;
        let stream = resp
            .bytes_stream()
            .map(|c| c.map_err(|e| TierError::Unavailable(format!("GCS read: {e}"))));
        Ok(stream.boxed())
    }

    async fn head(&self, key: &str) -> Result<RemoteHead, TierError> {
        let resp = self
            .http
            .get(self.object_url(key))
            .headers(self.auth().await?)
            .send()
            .await
            .map_err(unreachable)?;
        let object = json(resp).await?;
        let size = object["size"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| object["size"].as_u64())
            .ok_or_else(|| TierError::Unavailable("GCS metadata without a size".into()))?;
        Ok(RemoteHead {
            size,
            etag: object["etag"].as_str().map(str::to_owned),
        })
    }

    async fn delete(&self, key: &str) -> Result<(), TierError> {
        let resp = self
            .http
            .delete(self.object_url(key))
            .headers(self.auth().await?)
            .send()
            .await
            .map_err(unreachable)?;
        match ok(resp).await {
            Ok(_) | Err(TierError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn unreachable(e: reqwest::Error) -> TierError {
    TierError::Unavailable(format!("GCS: {e}"))
}

/// The response when it is a success; its error otherwise.
async fn ok(resp: reqwest::Response) -> Result<reqwest::Response, TierError> {
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(error_of(resp).await)
    }
}

async fn json(resp: reqwest::Response) -> Result<serde_json::Value, TierError> {
    let body = ok(resp).await?.bytes().await.map_err(unreachable)?;
    serde_json::from_slice(&body).map_err(|e| TierError::Unavailable(format!("GCS answered: {e}")))
}

async fn error_of(resp: reqwest::Response) -> TierError {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let text = format!(
        "GCS answered {status}: {}",
        body.chars().take(300).collect::<String>()
    );
    match status.as_u16() {
        404 => TierError::NotFound,
        400 | 401 | 403 => TierError::Refused(text),
        _ => TierError::Unavailable(text),
    }
}
