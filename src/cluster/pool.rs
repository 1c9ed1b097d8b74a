//! One bounded connection pool per [`super::Cluster`]: at most
//! [`MAX_CONNECTIONS`] TCP connections to the API server, and at most
//! [`CONCURRENCY`] requests in flight through one [`Limit`].
//!
//! kube's own client stack (hyper-util's pool) opens a new connection
//! whenever a request finds no idle one, and keeps it: a request that starts
//! while the previous one's connection is on its way back to the pool races
//! a fresh connect against that return, and the fresh connection stays in
//! the pool either way. A plan of 1,000 objects with 8 requests in flight
//! thus ended with 10 connections. Here the connector itself holds a permit
//! per open connection: a connect beyond the bound waits until one closes
//! (the waiting request is served by the connection that returns to the
//! pool first) and gives up after [`CONNECT_WAIT`].
//!
//! The stack is kube's (base URI, retries of 429/503/504, authentication,
//! extra headers, TLS from the kubeconfig) over the capped connector; a
//! kubeconfig with a proxy keeps kube's own stack, unbounded connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt as _;
use kube::{Client, Config};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{BoxError, ServiceBuilder};

/// Most API requests in flight at once on one cluster connection.
pub const CONCURRENCY: usize = 8;

/// Most TCP connections to the API server at once.
pub const MAX_CONNECTIONS: usize = CONCURRENCY;

/// How long a connect waits for a free connection slot. A request that
/// needs one is normally served by a connection returning to the pool
/// first; this bounds a connect that no request waits for any more.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// The bound on requests in flight, shared by every clone of a cluster
/// connection.
#[derive(Clone, Debug)]
pub struct Limit {
    permits: Arc<Semaphore>,
}

impl Default for Limit {
    fn default() -> Self {
        Limit::new(CONCURRENCY)
    }
}

impl Limit {
    /// At most `n` (>= 1) at once.
    pub fn new(n: usize) -> Limit {
        Limit {
            permits: Arc::new(Semaphore::new(n.max(1))),
        }
    }

    /// Runs `fut` once a slot is free, holding the slot until it is done.
    pub async fn run<T>(&self, fut: impl Future<Output = T>) -> T {
        // The semaphore is never closed: acquiring fails only then.
        let _permit = self.permits.acquire().await;
        fut.await
    }
}

/// A kube client whose connector opens at most [`MAX_CONNECTIONS`]
/// connections (see the module documentation); with a proxy, kube's own.
pub fn client(mut config: Config, connect_timeout: Duration) -> Result<Client, kube::Error> {
    if config.proxy_url.is_some() {
        config.connect_timeout = Some(connect_timeout);
        return Client::try_from(config);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let capped = Capped {
        inner: http,
        slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        connect_timeout,
    };
    let connector = if config.cluster_url.scheme_str() == Some("http") {
        // An http:// server (`kubectl proxy`) is never spoken TLS to: no
        // trust store is loaded for it (the system's, when the kubeconfig
        // names no CA, takes milliseconds to read).
        let no_tls = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(no_tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(capped)
    } else {
        config.rustls_https_connector_with_connector(capped)?
    };
    let hyper: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Builder::new(TokioExecutor::new())
            .pool_max_idle_per_host(MAX_CONNECTIONS)
            .build(connector);
    let retry = config
        .default_retry
        .then(|| tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry()));
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(retry)
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(hyper);
    Ok(Client::new(service, config.default_namespace))
}

/// A connector that holds one of a fixed number of slots for each
/// connection it opened, for as long as the connection is open.
#[derive(Clone)]
struct Capped {
    inner: HttpConnector,
    slots: Arc<Semaphore>,
    connect_timeout: Duration,
}

/// Why a capped connect failed.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("no connection to the API server became free within {}s", .0.as_secs())]
    NoSlot(Duration),
    #[error("connecting to the API server timed out after {}s", .0.as_secs())]
    Timeout(Duration),
    #[error(transparent)]
    Connect(BoxError),
}

impl tower::Service<Uri> for Capped {
    type Response = CappedIo<<HttpConnector as tower::Service<Uri>>::Response>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| ConnectError::Connect(e.into()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut inner = self.inner.clone();
        let slots = self.slots.clone();
        let timeout = self.connect_timeout;
        Box::pin(async move {
            let slot = tokio::time::timeout(CONNECT_WAIT, slots.acquire_owned())
                .await
                .map_err(|_| ConnectError::NoSlot(CONNECT_WAIT))?
                .map_err(|e| ConnectError::Connect(e.into()))?;
            let io = tokio::time::timeout(timeout, tower::Service::call(&mut inner, uri))
                .await
                .map_err(|_| ConnectError::Timeout(timeout))?
                .map_err(|e| ConnectError::Connect(e.into()))?;
            Ok(CappedIo { io, _slot: slot })
        })
    }
}

/// A connection holding its slot (released when the connection is dropped).
struct CappedIo<T> {
    io: T,
    _slot: OwnedSemaphorePermit,
}

impl<T: Read + Unpin> Read for CappedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for CappedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

impl<T: Connection> Connection for CappedIo<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tower::ServiceExt as _;

    use super::*;

    /// A connect beyond the slots waits until a connection closes, then
    /// opens one: never more connections at once than slots.
    #[tokio::test]
    async fn the_connector_opens_no_more_connections_than_its_slots() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let uri: Uri = format!("http://{}", listener.local_addr().expect("addr"))
            .parse()
            .expect("uri");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                open.push(socket);
            }
        });
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let capped = Capped {
            inner: http,
            slots: Arc::new(Semaphore::new(2)),
            connect_timeout: Duration::from_secs(5),
        };
        let connect = |c: Capped| {
            let uri = uri.clone();
            async move { c.oneshot(uri).await.expect("connect") }
        };
        let first = connect(capped.clone()).await;
        let _second = connect(capped.clone()).await;
        let third = tokio::spawn(connect(capped.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !third.is_finished(),
            "a third connection while two are open"
        );
        drop(first);
        let _third = tokio::time::timeout(Duration::from_secs(5), third)
            .await
            .expect("connected once a slot was free")
            .expect("task");
        assert_eq!(capped.slots.available_permits(), 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while accepted.load(Ordering::SeqCst) < 3 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn the_limit_lets_n_run_at_once_and_no_more() {
        let limit = Limit::new(3);
        let now = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks = (0..12).map(|_| {
            let (limit, now, most) = (limit.clone(), now.clone(), most.clone());
            tokio::spawn(async move {
                limit
                    .run(async {
                        let n = now.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        most.fetch_max(n, std::sync::atomic::Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    })
                    .await
            })
        });
        for t in futures::future::join_all(tasks).await {
            t.expect("task");
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
