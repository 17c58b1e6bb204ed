//! The admin API under `/strata/admin/v1/`, signed with the root credentials like any S3
//! request (s3s verifies the signature before a route runs), and the client the `strata admin`
//! commands use to call it.

use crate::admin_lifecycle;
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use http_body_util::BodyExt;
use s3s::route::S3Route;
use s3s::{s3_error, Body, S3Request, S3Response, S3Result};
use serde::Serialize;
use std::sync::Arc;
use storage::Store;

pub const PREFIX: &str = "/strata/admin/v1/";

/// Serves admin calls.
pub struct AdminRoute {
    pub store: Arc<Store>,
    pub scanner: Arc<lifecycle::scanner::Scanner>,
    pub tiering: Arc<tiering::Tiering>,
    pub replicator: Arc<replicator::Replicator>,
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

#[derive(Serialize)]
struct DriveInfo {
    set: usize,
    drive: String,
    online: bool,
    total_bytes: Option<u64>,
    free_bytes: Option<u64>,
}

#[derive(Serialize)]
struct Info {
    deployment_id: String,
    sets: usize,
    data_shards: usize,
    parity_shards: usize,
    /// Bytes objects can still take: the free space of the drives online, less parity.
    usable_free_bytes: u64,
    /// Every node (in a cluster; this node alone otherwise).
    nodes: Vec<serde_json::Value>,
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

    async fn call(&self, mut req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let op = req.uri.path().trim_start_matches(PREFIX);
        let query = req.uri.query();
        match (req.method.as_str(), op) {
            ("GET", "lifecycle/status") => json(&admin_lifecycle::status(&self.scanner)?),
            ("GET", "lifecycle/explain") => {
                json(&admin_lifecycle::explain(&self.scanner, query).await?)
            }
            ("POST", "lifecycle/preview") => {
                // A lifecycle document is at most 1,000 rules: far below 4 MiB.
                let body = req.input.store_all_limited(4 << 20).await.map_err(|e| {
                    s3_error!(InvalidArgument, "cannot read the configuration: {e}")
                })?;
                json(&admin_lifecycle::preview(&self.scanner, &self.tiering, query, &body).await?)
            }
            (method, op) if op.starts_with("tier/") => {
                // A tier's settings are a few hundred bytes.
                let body = req.input.store_all_limited(64 << 10).await.map_err(|e| {
                    s3_error!(InvalidArgument, "cannot read the tier settings: {e}")
                })?;
                let method = method.to_owned();
                json(&crate::admin_tier::route(&self.tiering, &method, op, query, &body).await?)
            }
            (method, op) if op.starts_with("replicate/") => {
                // A target's settings are a few hundred bytes.
                let body = req.input.store_all_limited(64 << 10).await.map_err(|e| {
                    s3_error!(InvalidArgument, "cannot read the target settings: {e}")
                })?;
                let method = method.to_owned();
                json(
                    &crate::admin_replicate::route(&self.replicator, &method, op, query, &body)
                        .await?,
                )
            }
            ("GET", "heal/status") => json(&self.store.heal_progress()),
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
                        s.drives().iter().map(move |d| {
                            let space = d.space();
                            DriveInfo {
                                set: s.index,
                                drive: d.label().to_owned(),
                                online: d.is_online(),
                                total_bytes: space.map(|s| s.total),
                                free_bytes: space.map(|s| s.free),
                            }
                        })
                    })
                    .collect();
                let layout = set.layout();
                let free: u64 = self
                    .store
                    .drives()
                    .iter()
                    .filter(|d| d.is_online())
                    .filter_map(|d| d.space())
                    .map(|s| s.free)
                    .sum();
                let nodes = match &self.cluster {
                    Some(c) => c.describe_nodes(),
                    None => vec![
                        serde_json::json!({"node": "local", "this_node": true, "online": true,
                        "version": env!("CARGO_PKG_VERSION")}),
                    ],
                };
                json(&Info {
                    deployment_id: self.store.deployment_id.to_string(),
                    sets: self.store.sets().len(),
                    data_shards: layout.data,
                    parity_shards: layout.parity,
                    usable_free_bytes: free / (layout.data + layout.parity) as u64
                        * layout.data as u64,
                    nodes,
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

/// Runs `call` while `progress` shows how it goes; the call's answer.
pub async fn while_running<T>(
    call: impl std::future::Future<Output = anyhow::Result<T>>,
    progress: impl std::future::Future<Output = ()>,
) -> anyhow::Result<T> {
    tokio::pin!(call);
    tokio::select! {
        answer = &mut call => answer,
        _ = progress => call.await,
    }
}

/// Shows a heal's progress (objects looked at of those counted at its start) in a terminal,
/// polling `status` until the process ends it; nothing when the output is not a terminal.
pub async fn heal_progress(status: impl AsyncFn() -> anyhow::Result<serde_json::Value>) {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return std::future::pending().await;
    }
    let bar = indicatif::ProgressBar::new(0);
    loop {
        if let Ok(s) = status().await {
            bar.set_length(s["objects_total"].as_u64().unwrap_or(0));
            bar.set_position(s["objects_scanned"].as_u64().unwrap_or(0));
            bar.set_message(format!(
                "{} healed",
                s["objects_healed"].as_u64().unwrap_or(0)
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// Polls a long admin operation (`poll`) until `done` says it ended, with a progress bar in a
/// terminal showing `progress` (position, length); returns the last status.
pub async fn follow_progress(
    poll: impl AsyncFn() -> anyhow::Result<serde_json::Value>,
    progress: impl Fn(&serde_json::Value) -> (u64, u64),
    done: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<serde_json::Value> {
    use std::io::IsTerminal;
    let bar = std::io::stdout()
        .is_terminal()
        .then(|| indicatif::ProgressBar::new(0));
    loop {
        let status = poll().await?;
        if let Some(bar) = &bar {
            let (position, length) = progress(&status);
            bar.set_length(length);
            bar.set_position(position);
        }
        if done(&status) {
            if let Some(bar) = bar {
                bar.finish();
            }
            return Ok(status);
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// An admin call's query string from its parameters, URL-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// As [`query`], leaving out the parameters without a value.
pub fn query_given(pairs: &[(&str, Option<&str>)]) -> String {
    let given: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v)))
        .collect();
    query(&given)
}

/// Signs `req` (SigV4, unsigned payload) for the S3 service in Strata's region.
fn sign<B>(
    req: &mut http::Request<B>,
    url: &str,
    access_key: &str,
    secret_key: &str,
) -> anyhow::Result<()> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let identity =
        aws_credential_types::Credentials::new(access_key, secret_key, None, None, "strata-admin")
            .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(crate::s3::REGION)
        .name("s3")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or("")));
    let signable = SignableRequest::new(
        req.method().as_str(),
        url,
        headers,
        SignableBody::UnsignedPayload,
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

/// Calls an admin API operation (`op` may carry a query string) on a running node, with
/// `body`, and returns the response body.
pub async fn call(
    endpoint: &str,
    method: Method,
    op: &str,
    body: Bytes,
    access_key: &str,
    secret_key: &str,
) -> anyhow::Result<String> {
    let base: Uri = endpoint.parse()?;
    let authority = base
        .authority()
        .ok_or_else(|| anyhow::anyhow!("endpoint {endpoint} has no host:port"))?
        .clone();
    let path = format!("{PREFIX}{op}");
    let stream = tokio::net::TcpStream::connect(authority.as_str()).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(&path)
        .header("host", authority.as_str())
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(http_body_util::Full::new(body))?;
    sign(
        &mut req,
        &format!("http://{authority}{path}"),
        access_key,
        secret_key,
    )?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        // An S3 error document: its code and message are what a person needs.
        let element = |name: &str| {
            let open = format!("<{name}>");
            let start = text.find(&open)? + open.len();
            let end = start + text[start..].find(&format!("</{name}>"))?;
            let escaped = &text[start..end];
            Some(
                escaped
                    .replace("&apos;", "'")
                    .replace("&quot;", "\"")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&"),
            )
        };
        match (element("Code"), element("Message")) {
            (Some(code), message) => {
                anyhow::bail!("{status}: {code}: {}", message.unwrap_or_default())
            }
            _ => anyhow::bail!("{status}: {text}"),
        }
    }
    Ok(text)
}
