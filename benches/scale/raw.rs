//! The raw baselines of `make bench`: the same requests certplane made,
//! replayed by a minimal native client, at most `concurrency` requests in
//! flight, so that certplane's time can be compared with what the server
//! itself takes to answer them. Vault reads go through one
//! `reqwest::Client` (one pool of keep-alive connections); API server
//! requests through a kube client on certplane's own connection pool (at
//! most 8 connections: reqwest's pool opened up to 133 for 2,045 requests
//! on a busy machine, a new one whenever a request started while the last
//! reply's connection was on its way back). Like certplane's one-shot
//! commands, they run on one thread (`main.rs`).

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt as _};

use super::kube_server::Recorded;

/// One Vault request: `read PATH` or `list PATH` (paths as the audit log
/// names them, without `/v1/`).
#[derive(Clone, Debug, PartialEq)]
pub struct VaultRead {
    /// `true`: a LIST (`GET ...?list=true`).
    pub list: bool,
    /// The API path.
    pub path: String,
}

impl VaultRead {
    /// Parses `read PATH` / `list PATH` lines (blank lines skipped).
    pub fn parse_lines(text: &str) -> Result<Vec<VaultRead>, String> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| match l.trim().split_once(' ') {
                Some(("read", p)) => Ok(VaultRead {
                    list: false,
                    path: p.trim().to_string(),
                }),
                Some(("list", p)) => Ok(VaultRead {
                    list: true,
                    path: p.trim().to_string(),
                }),
                _ => Err(format!(
                    "line {}: expected `read PATH` or `list PATH`: {l:?}",
                    i + 1
                )),
            })
            .collect()
    }
}

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Replayed {
    /// Requests sent.
    pub requests: u64,
    /// Replies by status class (`2xx`, `4xx`, ...) and transport errors.
    pub by_status: std::collections::BTreeMap<String, u64>,
    /// Wall time of the replay (the client already built).
    pub seconds: f64,
}

/// The one client of a replay: keep-alive, HTTP/1.1, bounded idle pool.
pub fn client(concurrency: usize) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

fn class(r: &Result<reqwest::StatusCode, String>) -> String {
    match r {
        Ok(s) => format!("{}xx", s.as_u16() / 100),
        Err(_) => "error".into(),
    }
}

/// Sends the `n` requests `send` makes, `concurrency` in flight, and counts
/// the replies by status.
async fn run<F>(n: usize, concurrency: usize, send: impl Fn(usize) -> F) -> Replayed
where
    F: std::future::Future<Output = Result<reqwest::StatusCode, String>>,
{
    let started = Instant::now();
    let mut out = Replayed::default();
    let mut replies = stream::iter((0..n).map(send)).buffer_unordered(concurrency.max(1));
    while let Some(r) = replies.next().await {
        out.requests += 1;
        *out.by_status.entry(class(&r)).or_default() += 1;
    }
    out.seconds = started.elapsed().as_secs_f64();
    out
}

/// Sends `reads` to the Vault at `addr` with `token`; each reply body is
/// read in full (as certplane reads it) and dropped.
pub async fn vault_reads(
    client: &reqwest::Client,
    addr: &str,
    token: &str,
    reads: &[VaultRead],
    concurrency: usize,
) -> Replayed {
    let addr = addr.trim_end_matches('/');
    run(reads.len(), concurrency, |i| {
        let r = &reads[i];
        let url = if r.list {
            format!("{addr}/v1/{}?list=true", r.path)
        } else {
            format!("{addr}/v1/{}", r.path)
        };
        let req = client.get(url).header("X-Vault-Token", token);
        async move {
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let status = resp.status();
            resp.bytes().await.map_err(|e| e.to_string())?;
            Ok(status)
        }
    })
    .await
}

/// Replays recorded API server requests (method, path and query, content
/// type, body) through a kube client — certplane's own bounded pool, over
/// the kubeconfig's TLS and credentials for a real API server —
/// `concurrency` in flight; the replies are read as text and dropped,
/// never parsed.
pub async fn kube_requests_via(
    client: &kube::Client,
    requests: &[Recorded],
    concurrency: usize,
) -> Replayed {
    run(requests.len(), concurrency, |i| {
        let r = &requests[i];
        let mut req = http::Request::builder()
            .method(r.method.as_str())
            .uri(r.uri.as_str())
            .header("Accept", "application/json");
        if let Some(ct) = &r.content_type {
            req = req.header("Content-Type", ct.as_str());
        }
        let req = req.body(r.body.clone().into_bytes());
        let client = client.clone();
        async move {
            let req = req.map_err(|e| e.to_string())?;
            match client.request_text(req).await {
                Ok(_) => Ok(reqwest::StatusCode::OK),
                Err(kube::Error::Api(status)) => reqwest::StatusCode::from_u16(status.code)
                    .map_err(|_| format!("status {}", status.code)),
                Err(e) => Err(e.to_string()),
            }
        }
    })
    .await
}
