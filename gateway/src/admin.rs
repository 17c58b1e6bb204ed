//! The admin API under `/strata/admin/v1/`, signed with the root credentials like any S3
//! request (s3s verifies the signature before a route runs), and the client the `strata admin`
//! commands use to call it.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use http_body_util::BodyExt;
use s3s::route::S3Route;
use s3s::{s3_error, Body, S3Request, S3Response, S3Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use storage::Store;

pub const PREFIX: &str = "/strata/admin/v1/";

/// Serves admin calls.
pub struct AdminRoute {
    pub store: Arc<Store>,
}

#[derive(Serialize)]
struct DriveInfo {
    set: usize,
    drive: String,
    online: bool,
}

#[derive(Serialize)]
struct Info {
    deployment_id: String,
    sets: usize,
    data_shards: usize,
    parity_shards: usize,
    drives: Vec<DriveInfo>,
}

fn json<T: Serialize>(value: &T) -> S3Result<S3Response<Body>> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| s3_error!(InternalError, "{e}"))?;
    let mut resp = S3Response::new(Body::from(bytes));
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().expect("static"),
    );
    Ok(resp)
}

#[async_trait::async_trait]
impl S3Route for AdminRoute {
    fn is_match(&self, _: &Method, uri: &Uri, _: &HeaderMap, _: &mut http::Extensions) -> bool {
        uri.path().starts_with(PREFIX)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        match req.credentials {
            Some(_) => Ok(()),
            None => Err(s3_error!(
                AccessDenied,
                "Admin calls must be signed with the root credentials"
            )),
        }
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let op = req.uri.path().trim_start_matches(PREFIX);
        match (req.method.as_str(), op) {
            ("POST", "heal") => {
                let report = self
                    .store
                    .heal_all()
                    .await
                    .map_err(|e| s3_error!(InternalError, "heal failed: {e}"))?;
                json(&report)
            }
            ("GET", "info") => {
                let set = &self.store.sets()[0];
                let drives = self
                    .store
                    .sets()
                    .iter()
                    .flat_map(|s| {
                        s.drives().iter().map(move |d| DriveInfo {
                            set: s.index,
                            drive: d.label().to_owned(),
                            online: d.is_online(),
                        })
                    })
                    .collect();
                json(&Info {
                    deployment_id: self.store.deployment_id.to_string(),
                    sets: self.store.sets().len(),
                    data_shards: set.layout().data,
                    parity_shards: set.layout().parity,
                    drives,
                })
            }
            _ => Err(s3_error!(
                NotImplemented,
                "Unknown admin call {} {}",
                req.method,
                op
            )),
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("any key length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// SigV4 `Authorization` header value for a request without a query string and with an
/// unsigned payload. Only the admin client signs; every S3 signature is verified by s3s.
pub fn sign_v4(
    method: &str,
    host: &str,
    path: &str,
    amz_date: &str,
    access_key: &str,
    secret_key: &str,
) -> String {
    let date = &amz_date[..8];
    let canonical = format!(
        "{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:{amz_date}\n\nhost;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD"
    );
    let scope = format!("{date}/us-east-1/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{secret_key}").as_bytes(), date);
    let k = hmac(&k, "us-east-1");
    let k = hmac(&k, "s3");
    let k = hmac(&k, "aws4_request");
    let signature = hex::encode(hmac(&k, &to_sign));
    format!("AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}")
}

/// Calls an admin API operation on a running node and returns the response body.
pub async fn call(
    endpoint: &str,
    method: Method,
    op: &str,
    access_key: &str,
    secret_key: &str,
) -> anyhow::Result<String> {
    let base: Uri = endpoint.parse()?;
    let authority = base
        .authority()
        .ok_or_else(|| anyhow::anyhow!("endpoint {endpoint} has no host:port"))?
        .clone();
    let path = format!("{PREFIX}{op}");
    let amz_date = time::OffsetDateTime::now_utc().format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))?;
    let auth = sign_v4(
        method.as_str(),
        authority.as_str(),
        &path,
        &amz_date,
        access_key,
        secret_key,
    );
    let stream = tokio::net::TcpStream::connect(authority.as_str()).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(&path)
        .header("host", authority.as_str())
        .header("x-amz-date", &amz_date)
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .header("authorization", auth)
        .body(http_body_util::Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        anyhow::bail!("{status}: {text}");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_names_the_scope_and_depends_on_the_secret() {
        // Same inputs always give the same header; a different secret gives another.
        let a = sign_v4(
            "POST",
            "127.0.0.1:9000",
            "/strata/admin/v1/heal",
            "20260101T000000Z",
            "ak",
            "secretkey",
        );
        let b = sign_v4(
            "POST",
            "127.0.0.1:9000",
            "/strata/admin/v1/heal",
            "20260101T000000Z",
            "ak",
            "secretkez",
        );
        assert!(a.starts_with("AWS4-HMAC-SHA256 Credential=ak/20260101/us-east-1/s3/aws4_request"));
        assert_ne!(a, b);
    }
}
