//! Node wiring: open the drives, start the store, and serve S3 (through s3s), the admin API,
//! health probes and metrics on one listener.

use crate::admin::AdminRoute;
use crate::auth;
use crate::body_check;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::http_fixups;
use crate::idle_body::IdleTimeout;
use crate::metrics::{classify, Metrics};
use crate::post_form;
use crate::s3::Gateway;
use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use lifecycle::scanner::Scanner;
use s3s::host::{S3Host, VirtualHost};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{Body, S3Result};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use storage::{Drive, LocalDrive, Store};
use tiering::Tiering;

/// Virtual-host-style buckets under configured domains; path style for anything else
/// (IP addresses, unknown names), so a plain `http://127.0.0.1:9000` endpoint always works.
struct Domains(Vec<String>);

impl Domains {
    /// The domain and bucket a Host header names (virtual-host style), or the bare host name.
    fn split<'a>(&'a self, host: &'a str) -> (&'a str, Option<&'a str>) {
        let name = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        for domain in &self.0 {
            if let Some(bucket) = name
                .strip_suffix(domain.as_str())
                .and_then(|b| b.strip_suffix('.'))
            {
                return (domain.as_str(), Some(bucket));
            }
        }
        (name, None)
    }
}

impl S3Host for Domains {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        Ok(match self.split(host) {
            (domain, Some(bucket)) => VirtualHost::new(domain).with_bucket(bucket),
            (name, None) => VirtualHost::new(name),
        })
    }
}

/// The root account: one access key and its secret. Unknown keys get AWS's error code.
struct RootAuth {
    access_key: String,
    secret_key: s3s::auth::SecretKey,
}

#[async_trait::async_trait]
impl s3s::auth::S3Auth for RootAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<s3s::auth::SecretKey> {
        if access_key == self.access_key {
            Ok(self.secret_key.clone())
        } else {
            Err(s3s::s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            ))
        }
    }
}

/// Largest file a browser-form upload (POST object) may carry, bytes.
pub const POST_OBJECT_MAX_FILE: u64 = 64 << 20;

/// The directory in the first drive that holds node-local state (the lifecycle and tiering
/// journals).
const NODE_STATE: &str = ".strata-node";

/// Everything a request handler needs.
pub struct Node {
    pub store: Arc<Store>,
    /// The other nodes, in a multi-node deployment.
    pub cluster: Option<Arc<Cluster>>,
    s3: S3Service,
    metrics: Metrics,
    scanner: Arc<Scanner>,
    tiering: Arc<Tiering>,
    replicator: Arc<replicator::Replicator>,
    /// The root key, for the checks around s3s's signature verification.
    root: auth::RootKey,
    domains: Domains,
    idle_timeout: std::time::Duration,
    /// Request tasks, which outlive their connection when the client goes away.
    tasks: tokio_util::task::TaskTracker,
}

/// Opens a single node's drives and store; refuses foreign drives with a clear message.
async fn open_local_store(config: &Config) -> Result<(Arc<Store>, Vec<usize>)> {
    let mut drives: Vec<Arc<dyn Drive>> = Vec::new();
    for path in &config.drives {
        let drive = LocalDrive::open(path)
            .with_context(|| format!("cannot open drive {}", path.display()))?;
        drives.push(Arc::new(drive));
    }
    Store::open(drives, config.parity)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Starts the node's work on an open store: background healing, lifecycle, tiering,
/// replication, and the S3 service.
async fn open_node(
    config: &Config,
    store: Arc<Store>,
    fresh: Vec<usize>,
    cluster: Option<Arc<Cluster>>,
) -> Result<Arc<Node>> {
    if let Some(c) = &cluster {
        c.join(&store);
        // Writes made while this node was down missed its drives: a pass over every object
        // finds them (the writers' heal queues catch most of them sooner).
        let store = store.clone();
        tokio::spawn(async move {
            match store.heal_all().await {
                Ok(report) => tracing::info!(?report, "start-up heal of the cluster finished"),
                Err(e) => tracing::warn!(error = %e, "start-up heal of the cluster failed"),
            }
        });
    }
    // A cluster node's drives take other nodes' writes from the moment its port is open.
    match &cluster {
        Some(c) => store.start_background_since(fresh, c.serving_since),
        None => store.start_background(fresh),
    }
    // Node-local state lives beside the first drive's own, outside what a drive re-format
    // clears; losing it costs only a scan from the beginning.
    let journal = config.drives[0].join(NODE_STATE).join("lifecycle.db");
    let scanner = Scanner::open(store.clone(), config.lifecycle.clone(), &journal)
        .map_err(anyhow::Error::msg)?;
    let tiering = Tiering::open(
        store.clone(),
        &config.drives[0].join(NODE_STATE).join("tiering.db"),
        config.lifecycle.clock,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    for tier in &config.tiers {
        tiering
            .registry()
            .add(tier.clone(), true)
            .await
            .map_err(|e| anyhow::anyhow!("tier {} in the config file: {e}", tier.name))?;
    }
    tiering.start();
    let replicator = replicator::Replicator::open(
        store.clone(),
        tiering.clone(),
        &config.drives[0].join(NODE_STATE).join("replication.db"),
        config.replication_min_backoff,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    replicator.start();
    scanner.set_transitions(tiering.clone());
    scanner.start();
    let mut builder = S3ServiceBuilder::new(Gateway {
        store: store.clone(),
        lifecycle_clock: config.lifecycle.clock,
        tiering: tiering.clone(),
        replicator: replicator.clone(),
    });
    builder.set_auth(RootAuth {
        access_key: config.root_user.clone(),
        secret_key: config.root_password.clone().into(),
    });
    store.set_min_free(config.min_free);
    builder.set_host(Domains(config.domains.clone()));
    // s3s reads a browser-form upload's file into memory before a handler runs: a cap keeps
    // one request's memory bounded (larger files go through PutObject or multipart).
    let mut s3_config = s3s::config::S3Config::default();
    s3_config.post_object_max_file_size = POST_OBJECT_MAX_FILE;
    builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
        s3_config,
    ))));
    builder.set_route(AdminRoute {
        store: store.clone(),
        scanner: scanner.clone(),
        tiering: tiering.clone(),
        replicator: replicator.clone(),
        cluster: cluster.clone(),
    });
    Ok(Arc::new(Node {
        store,
        cluster,
        scanner,
        tiering,
        replicator,
        s3: builder.build(),
        metrics: Metrics::default(),
        root: auth::RootKey {
            access_key: config.root_user.clone(),
            secret: config.root_password.clone(),
        },
        domains: Domains(config.domains.clone()),
        idle_timeout: config.idle_timeout,
        tasks: tokio_util::task::TaskTracker::new(),
    }))
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Body::from(body.into()));
    *r.status_mut() = status;
    r
}

impl Node {
    /// True when every erasure set can both read and write (and, in a cluster, a majority of
    /// the nodes answer and this node's control plane is current: a reachable leader, and
    /// every change it committed applied here).
    fn ready(&self) -> bool {
        // In a cluster: a majority of nodes for object locks, and a control-plane leader for
        // configuration changes.
        let nodes = self.cluster.as_ref().is_none_or(|c| {
            c.nodes_online() >= storage::dlock::lock_quorum(c.peers.len() + 1)
                && c.control_is_current()
        });
        nodes
            && self.store.sets().iter().all(|s| {
                s.drives().iter().filter(|d| d.is_online()).count() >= s.layout().write_quorum()
            })
    }

    /// Health probes and metrics answer unsigned GETs on fixed paths; signed requests to the
    /// same paths are S3 calls to buckets of those names.
    fn probe(&self, req: &Request<Incoming>) -> Option<Response<Body>> {
        // `Signature=` covers SigV2 presigned URLs and SigV4's `X-Amz-Signature=`.
        let signed = req.headers().contains_key(http::header::AUTHORIZATION)
            || req.uri().query().is_some_and(|q| q.contains("Signature="));
        if signed || (req.method() != Method::GET && req.method() != Method::HEAD) {
            return None;
        }
        match req.uri().path() {
            "/health/live" => Some(text(StatusCode::OK, "OK\n")),
            // For load balancers (as MinIO's): the cluster as this node sees it has write
            // quorum; the same test as this node's readiness, under the name MinIO users know.
            "/health/ready" | "/health/cluster" if self.ready() => {
                Some(text(StatusCode::OK, "OK\n"))
            }
            "/health/ready" | "/health/cluster" => Some(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not enough drives or nodes online for writes\n",
            )),
            "/metrics" => {
                for set in self.store.sets() {
                    for d in set.drives() {
                        self.metrics.set_drive(d.label(), d.is_online(), d.space());
                    }
                }
                self.metrics.set_heal_queue(self.store.heal_queue_stats());
                self.metrics.set_lifecycle(&self.scanner.stats());
                self.metrics.set_tiering(&self.tiering);
                self.metrics.set_replication(&self.replicator);
                if let Some(c) = &self.cluster {
                    self.metrics.set_peers(c);
                }
                let mut r = text(StatusCode::OK, self.metrics.encode());
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                Some(r)
            }
            _ => None,
        }
    }

    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        if let Some(resp) = self.probe(&req) {
            return Ok(resp);
        }
        let started = Instant::now();
        let api = classify(
            req.method(),
            req.uri(),
            req.headers().contains_key("x-amz-copy-source"),
        );
        let request_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase();
        let bytes_in = header_u64(req.headers(), "x-amz-decoded-content-length")
            .or_else(|| header_u64(req.headers(), "content-length"))
            .unwrap_or(0);
        // The operation runs in its own task: hyper drops a request's future when the client
        // goes away, and a write cut off between its drives' commits and its rollback would
        // leave fewer than a quorum of drives holding it.
        let node = self.clone();
        let mut req = req.map(|body| IdleTimeout::new(body, self.idle_timeout));
        let method = req.method().clone();
        let attributes = http_fixups::is_object_attributes(&method, req.uri());
        let unanswered_expect = http_fixups::expects_continue_without_body(req.headers());
        http_fixups::drop_unusable_range(&mut req);
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let virtual_bucket = self.domains.split(host).1.map(str::to_owned);
        let refused = http_fixups::refusal(&req).map(|e| body_check::response(&e));
        let refused = refused.or_else(|| {
            let now = time::OffsetDateTime::now_utc();
            auth::precheck(&mut req, &self.root, virtual_bucket.as_deref(), now)
                .err()
                .map(|e| e.response())
        });
        let sent = auth::Sent::of(&req, virtual_bucket.as_deref());
        let call = self.tasks.spawn(async move {
            if let Some(refusal) = refused {
                return refusal;
            }
            match body_check::checked(req).await {
                Err(e) => body_check::response(&e),
                Ok(req) => match post_form::call(&node.s3, &node.root, virtual_bucket, req).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = ?e, "request failed outside the S3 layer");
                        text(StatusCode::INTERNAL_SERVER_ERROR, "")
                    }
                },
            }
        });
        let mut resp = match call.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "request task failed");
                text(StatusCode::INTERNAL_SERVER_ERROR, "")
            }
        };
        http_fixups::ranged_head_is_partial(&method, &mut resp);
        http_fixups::chosen_status(&mut resp);
        if unanswered_expect {
            resp.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        if resp.status().is_client_error() || resp.status().is_server_error() {
            resp = patch_body(resp, |text| {
                let explained =
                    auth::explain(&sent, text).or_else(|| http_fixups::with_default_message(text));
                let text = explained.as_deref().unwrap_or(text);
                with_request_id(text, &request_id).or(explained)
            })
            .await;
        } else if attributes {
            resp = patch_body(resp, http_fixups::unquoted_etag).await;
        }
        let h = resp.headers_mut();
        h.insert(
            "x-amz-request-id",
            HeaderValue::from_str(&request_id).expect("hex"),
        );
        h.insert("server", HeaderValue::from_static("Strata"));
        let bytes_out = header_u64(resp.headers(), "content-length").unwrap_or(0);
        self.metrics.record(
            api,
            resp.status().as_u16(),
            started.elapsed(),
            bytes_in,
            bytes_out,
        );
        Ok(resp)
    }
}

fn header_u64(h: &http::HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.parse().ok()
}

/// Rewrites a small XML body with `patch` (which answers `None` to leave it alone).
pub(crate) async fn patch_body(
    resp: Response<Body>,
    patch: impl FnOnce(&str) -> Option<String>,
) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let Ok(collected) = body.collect().await else {
        return Response::from_parts(parts, Body::empty());
    };
    let bytes = collected.to_bytes();
    let body = match patch(&String::from_utf8_lossy(&bytes)) {
        Some(patched) => {
            parts.headers.insert(
                http::header::CONTENT_LENGTH,
                HeaderValue::from(patched.len()),
            );
            Bytes::from(patched)
        }
        None => bytes,
    };
    Response::from_parts(parts, Body::from(body))
}

/// Adds `<RequestId>` to an XML error body that lacks one (errors raised inside s3s).
fn with_request_id(text: &str, request_id: &str) -> Option<String> {
    (text.contains("</Error>") && !text.contains("<RequestId>")).then(|| {
        text.replacen(
            "</Error>",
            &format!("<RequestId>{request_id}</RequestId></Error>"),
            1,
        )
    })
}

/// What answers on the node's port: the internal RPC (in a cluster) from the first moment,
/// the node's S3 service, health and metrics once its store is open.
struct Front {
    rpc: Option<Arc<storage::rpc_server::RpcServer>>,
    node: std::sync::OnceLock<Arc<Node>>,
    /// What a starting node waits for, for the 503s it answers meanwhile.
    starting: std::sync::Mutex<String>,
}

impl Front {
    async fn route(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        if let Some(rpc) = &self.rpc {
            // Only signed internal calls: an S3 request for bucket `strata` stays an S3 request.
            let internal = req.uri().path().starts_with(storage::rpc::PREFIX)
                && req
                    .headers()
                    .contains_key(storage::rpc_auth::SIGNATURE_HEADER);
            if internal {
                return Ok(rpc.handle(req).await.map(Body::from));
            }
        }
        match self.node.get() {
            Some(node) => node.clone().handle(req).await,
            None if req.uri().path() == "/health/live" => Ok(text(StatusCode::OK, "OK\n")),
            None => {
                let why = self.starting.lock().expect("lock").clone();
                Ok(text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the node is starting: {why}\n"),
                ))
            }
        }
    }
}

fn print_banner(config: &Config, node: &Node, address: std::net::SocketAddr) {
    let layout = node.store.sets()[0].layout();
    println!("Strata S3 endpoint: http://{address}");
    println!(
        "  {} drive(s) in {} erasure set(s), {} data + {} parity shards",
        node.store.drives().len(),
        node.store.sets().len(),
        layout.data,
        layout.parity
    );
    if let Some(c) = &node.cluster {
        println!(
            "  cluster of {} nodes; this node is {}",
            c.peers.len() + 1,
            c.settings.me
        );
    }
    if config.default_credentials {
        println!(
            "  credentials (defaults; set STRATA_ROOT_USER / STRATA_ROOT_PASSWORD to change):"
        );
    } else {
        println!("  credentials:");
    }
    println!("    access key: {}", config.root_user);
    if config.default_credentials {
        println!("    secret key: {}", config.root_password);
    }
}

/// Serves the node until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(config.address)
        .await
        .with_context(|| format!("cannot listen on {}", config.address))?;
    let address = listener.local_addr()?;
    let cluster = match &config.cluster {
        Some(settings) => Some(Arc::new(Cluster::new(settings.clone())?)),
        None => None,
    };
    let front = Arc::new(Front {
        rpc: cluster.as_ref().map(|c| c.rpc.clone()),
        node: Default::default(),
        starting: std::sync::Mutex::new("opening the drives".into()),
    });
    match cluster {
        None => {
            let (store, fresh) = open_local_store(&config).await?;
            let node = open_node(&config, store, fresh, None).await?;
            print_banner(&config, &node, address);
            let _ = front.node.set(node);
        }
        Some(cluster) => {
            // Peers must reach this node's drives before any node can open the deployment,
            // so the port serves internal calls while the store waits for them.
            println!(
                "Strata node {} starting: waiting for its peers",
                cluster.settings.me
            );
            let (front, config) = (front.clone(), config.clone());
            tokio::spawn(async move {
                let waiting = |why: &str| {
                    let mut last = front.starting.lock().expect("lock");
                    if *last != why {
                        tracing::info!(waiting_for = why, "cluster not open yet");
                        *last = why.to_owned();
                    }
                };
                let state = config.drives[0].join(NODE_STATE);
                let opened = match cluster.start_control_plane(&state).await {
                    Ok(()) => match cluster.open_store(config.parity, waiting).await {
                        Ok((store, fresh)) => open_node(&config, store, fresh, Some(cluster)).await,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                match opened {
                    Ok(node) => {
                        print_banner(&config, &node, address);
                        let _ = front.node.set(node);
                    }
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        std::process::exit(1);
                    }
                }
            });
        }
    }
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Request headers beyond 64 KiB are refused by hyper with 431 before anything is read; the
    // count is raised from hyper's 100, which 2 KiB of small x-amz-meta-* entries can pass.
    // A client that stops sending its headers is cut off like one that stops sending a body.
    http.http1()
        .max_buf_size(64 * 1024)
        .max_headers(512)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.idle_timeout);
    let http = Arc::new(http);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
                };
                let _ = stream.set_nodelay(true);
                let front = front.clone();
                let (http, watcher) = (http.clone(), graceful.watcher());
                let idle = config.idle_timeout;
                tokio::spawn(async move {
                    // hyper's header timeout starts only once it knows the protocol: a
                    // connection that sends nothing at all is dropped here.
                    let mut first = [0u8; 1];
                    match tokio::time::timeout(idle, stream.peek(&mut first)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => return,
                    }
                    let service = hyper::service::service_fn(move |req| front.clone().route(req));
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    // Stop taking connections, let requests in flight finish (idle keep-alive connections
    // close at once), then exit.
    drop(listener);
    println!(
        "shutting down: finishing requests on {} connection(s), for up to {} s",
        graceful.count(),
        SHUTDOWN_GRACE.as_secs()
    );
    // Request tasks can outlive their connection (a client that went away); they finish too.
    let node = front.node.get().cloned();
    if let Some(node) = &node {
        node.tasks.close();
    }
    let drained = async {
        graceful.shutdown().await;
        if let Some(node) = &node {
            node.tasks.wait().await;
        }
    };
    tokio::select! {
        _ = drained => println!("shut down"),
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => println!("shut down with requests unfinished"),
        _ = shutdown_signal() => println!("second stop signal: shut down with requests unfinished"),
    }
    Ok(())
}

/// How long a stopping node waits for requests in flight (Kubernetes' default grace period).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_map_to_virtual_or_path_style() {
        let d = Domains(vec!["localhost".into(), "s3.example.com".into()]);
        assert_eq!(
            d.parse_host_header("b1.localhost:9000").unwrap().bucket(),
            Some("b1")
        );
        assert_eq!(
            d.parse_host_header("my.bucket.s3.example.com")
                .unwrap()
                .bucket(),
            Some("my.bucket")
        );
        assert_eq!(
            d.parse_host_header("localhost:9000").unwrap().bucket(),
            None
        );
        assert_eq!(
            d.parse_host_header("127.0.0.1:9000").unwrap().bucket(),
            None
        );
        assert_eq!(d.parse_host_header("other.host").unwrap().bucket(), None);
    }
}
