//! The health and metrics endpoints of `certplane run`: `/healthz`,
//! `/readyz`, `/metrics` (Prometheus text format, from the
//! [`super::metrics`] registry), served with hyper.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::metrics::{self, Shared};

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// What the endpoints serve: the loop's status and the registry over it.
struct Endpoints {
    status: Shared,
    registry: Registry,
}

impl Endpoints {
    fn new(status: Shared) -> Endpoints {
        Endpoints {
            registry: metrics::registry(status.clone()),
            status,
        }
    }

    /// The answer to `method path` at `now`.
    fn route(&self, method: &Method, path: &str, now: Instant) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            return reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "method not allowed\n".into(),
            );
        }
        match path {
            "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
            "/readyz" => match metrics::lock(&self.status).readiness(now) {
                None => reply(StatusCode::OK, "text/plain", "ready\n".into()),
                Some(why) => reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    format!("not ready: {why}\n"),
                ),
            },
            // The collector takes the status lock itself.
            "/metrics" => match metrics::encode(&self.registry) {
                Ok(text) => reply(StatusCode::OK, metrics::CONTENT_TYPE, text),
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode the metrics");
                    reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        "cannot encode the metrics\n".into(),
                    )
                }
            },
            _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
        }
    }
}

/// Binds `addr` (so a busy port fails the start, not later).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `stop` turns true.
pub async fn serve(listener: TcpListener, status: Shared, mut stop: watch::Receiver<bool>) {
    let endpoints = Arc::new(Endpoints::new(status));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a metrics connection");
                continue;
            }
        };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let r = endpoints.route(req.method(), req.uri().path(), Instant::now());
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use http_body_util::BodyExt as _;

    use super::*;
    use crate::run::metrics::Status;

    fn endpoints(status: Status) -> Endpoints {
        Endpoints::new(Arc::new(Mutex::new(status)))
    }

    /// Status, `Content-Type` and body of `GET path` at `now`.
    async fn get(e: &Endpoints, path: &str, now: Instant) -> (u16, String, String) {
        let r = e.route(&Method::GET, path, now);
        let content_type = r.headers()[hyper::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        let status = r.status().as_u16();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn healthz_readyz_and_metrics_answer_as_before() {
        let now = Instant::now();
        let mut status = Status::default();
        status.not_ready = Some("no reconcile yet".into());
        let e = endpoints(status);
        assert_eq!(
            get(&e, "/healthz", now).await,
            (200, "text/plain".into(), "ok\n".into())
        );
        assert_eq!(
            get(&e, "/readyz", now).await,
            (
                503,
                "text/plain".into(),
                "not ready: no reconcile yet\n".into()
            )
        );
        let (code, content_type, body) = get(&e, "/metrics", now).await;
        assert_eq!(
            (code, content_type.as_str()),
            (200, "text/plain; version=0.0.4; charset=utf-8")
        );
        assert!(body.contains("\ncertplane_ready 0\n"), "{body}");
        // The registry reads the status at each scrape.
        metrics::lock(&e.status).not_ready = None;
        assert_eq!(
            get(&e, "/readyz", now).await,
            (200, "text/plain".into(), "ready\n".into())
        );
        let (_, _, body) = get(&e, "/metrics", now).await;
        assert!(body.contains("\ncertplane_ready 1\n"), "{body}");
        assert_eq!(get(&e, "/nowhere", now).await.0, 404);
        assert_eq!(e.route(&Method::POST, "/readyz", now).status(), 405);
        assert_eq!(e.route(&Method::HEAD, "/healthz", now).status(), 200);
    }

    #[tokio::test]
    async fn readyz_turns_503_when_the_reconcile_in_flight_overruns() {
        let t0 = Instant::now();
        let mut status = Status::default();
        status.reconcile_started = Some(t0);
        status.reconcile_deadline = Duration::from_secs(5);
        let e = endpoints(status);
        assert_eq!(get(&e, "/readyz", t0 + Duration::from_secs(4)).await.0, 200);
        let (code, _, body) = get(&e, "/readyz", t0 + Duration::from_secs(6)).await;
        assert_eq!(code, 503);
        assert!(
            body.starts_with(
                "not ready: the reconcile in flight has run 6s, over its deadline of 5s"
            ),
            "{body}"
        );
    }
}
