//! The sender of Vault API calls: one authenticated HTTP client per run
//! (reqwest, with its timeouts and TLS), and the calls everything else is
//! made of (`read`, `list`, `write`, `write_idempotent`, `delete`,
//! `patch`). Requests are built by [`super::request`] (no I/O there); this
//! module sends them, counts them, repeats the ones that are safe to
//! repeat, and maps failures to [`VaultError`]. Every failure is one line
//! that names the path and what really happened (connect or request
//! timeout with its value, a rejected token, a missing capability); no
//! request body is ever logged or copied into an error (`redact`).
//!
//! Busy answers (429, 502, 503 other than "sealed", 504) are retried for
//! calls that are safe to repeat — reads, lists, deletes, patches and
//! writes that are idempotent by construction ([`Vault::write_idempotent`])
//! — with a bounded backoff that honours `Retry-After` (capped), at most
//! [`MAX_ATTEMPTS`] times. A plain [`Vault::write`] (a CA generation, a
//! secret-ID creation, a mount) is never repeated.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::connect::{AuthSettings, VaultSettings};
use super::request::{Endpoint, Op, Repeat, Request};
use super::{VaultError, error_chain};
use crate::model::Sensitive;

/// How many requests a [`Vault`] made, by kind (for benchmarks and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// GET and LIST (including the health check).
    pub reads: u64,
    /// POST, PATCH and DELETE (logins excluded).
    pub writes: u64,
    /// Login calls.
    pub logins: u64,
}

/// How many times a call that is safe to repeat is sent at most.
pub const MAX_ATTEMPTS: u32 = 4;
/// The first pause before a retry (doubled for each further one) when Vault
/// gives no `Retry-After`.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest pause certplane honours from a `Retry-After` header.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// A reply: status, parsed JSON body (if any), and `Retry-After`.
struct Reply {
    status: StatusCode,
    body: Option<Value>,
    retry_after: Option<Duration>,
}

/// Whether Vault (or a proxy in front of it) said "busy, try again".
fn busy(reply: &Reply) -> bool {
    match reply.status.as_u16() {
        429 | 502 | 504 => true,
        // A sealed Vault answers 503 too: that does not pass by waiting.
        503 => !vault_errors(reply.body.as_ref()).contains("sealed"),
        _ => false,
    }
}

/// How long to wait before attempt `attempt + 1`: `Retry-After` when given
/// (capped), else an exponential backoff.
fn pause(attempt: u32, retry_after: Option<Duration>) -> Duration {
    match retry_after {
        Some(d) => d.min(MAX_RETRY_AFTER),
        None => FIRST_BACKOFF * 2u32.saturating_pow(attempt.saturating_sub(1)),
    }
}

/// A `Retry-After` header in seconds (the HTTP-date form is not used by
/// Vault and falls back to the backoff).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A connected, logged-in Vault.
pub struct Vault {
    http: reqwest::Client,
    /// Where requests go and with which token and namespace.
    endpoint: Endpoint,
    addr: String,
    /// Where the token came from (never the token), for error messages.
    token_from: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    reads: AtomicU64,
    writes: AtomicU64,
    logins: AtomicU64,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("addr", &self.addr)
            .field("logged_in", &self.endpoint.has_token())
            .finish()
    }
}

/// rustls needs one process-wide crypto provider; certplane uses ring
/// everywhere (kube selects it too).
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Vault {
    /// Connects: checks `sys/health` (sealed, uninitialised), then logs in
    /// once (none for a token, whose validity is checked with one
    /// `auth/token/lookup-self`).
    pub async fn connect(settings: &VaultSettings) -> Result<Vault, VaultError> {
        let mut vault = Self::unauthenticated(settings)?;
        vault.check_health().await?;
        match &settings.auth {
            AuthSettings::Token { token } => {
                let from = token.describe();
                let secret = token.read().map_err(|source| VaultError::Source {
                    what: "the vault token".into(),
                    source,
                })?;
                vault.set_token(&secret, &from)?;
                vault.lookup_self(&from).await?;
            }
            AuthSettings::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let sid = secret_id.read().map_err(|source| VaultError::Source {
                    what: format!("the AppRole secret ID ({})", secret_id.describe()),
                    source,
                })?;
                let body =
                    serde_json::json!({"role_id": role_id, "secret_id": sid.expose().trim()});
                vault.login("approle", mount, &body).await?;
            }
            AuthSettings::Jwt { mount, role, jwt } => {
                let token = jwt.read().map_err(|source| VaultError::Source {
                    what: format!("the JWT ({})", jwt.describe()),
                    source,
                })?;
                let body = serde_json::json!({"role": role, "jwt": token.expose().trim()});
                vault.login("jwt", mount, &body).await?;
            }
            AuthSettings::Kubernetes { mount, role, jwt } => {
                let token = jwt.read().map_err(|source| VaultError::Source {
                    what: format!("the service account token ({})", jwt.describe()),
                    source,
                })?;
                let body = serde_json::json!({"role": role, "jwt": token.expose().trim()});
                vault.login("kubernetes", mount, &body).await?;
            }
            AuthSettings::Cert {
                mount,
                name,
                identity,
            } => {
                let body = match name {
                    Some(n) => serde_json::json!({"name": n}),
                    None => serde_json::json!({}),
                };
                match identity {
                    // Log in over a connection with the login certificate,
                    // then go on with the connection's own.
                    Some(pem) => {
                        let login = http_client(settings, &vault.addr, Some(pem))?;
                        let own = std::mem::replace(&mut vault.http, login);
                        let result = vault.login("cert", mount, &body).await;
                        vault.http = own;
                        result?;
                    }
                    None => vault.login("cert", mount, &body).await?,
                }
            }
        }
        Ok(vault)
    }

    /// A client without a token (health checks, logins).
    fn unauthenticated(settings: &VaultSettings) -> Result<Vault, VaultError> {
        install_crypto_provider();
        let address = super::connect::check_address(&settings.address)?;
        let endpoint = Endpoint::new(&address, settings.namespace.as_deref())?;
        let http = http_client(settings, &address, None)?;
        Ok(Vault {
            http,
            endpoint,
            addr: address,
            token_from: String::new(),
            connect_timeout: settings.connect_timeout,
            request_timeout: settings.request_timeout,
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            logins: AtomicU64::new(0),
        })
    }

    fn set_token(&mut self, token: &Sensitive, from: &str) -> Result<(), VaultError> {
        self.endpoint.set_token(token, from)?;
        self.token_from = from.to_string();
        Ok(())
    }

    /// `GET sys/health` with codes that make every state answer 200, so the
    /// state can be told apart in one line.
    async fn check_health(&self) -> Result<(), VaultError> {
        let req = Request::health();
        let path = req.path.as_str();
        let (reply, attempts) = self.send(&req).await?;
        if !reply.status.is_success() {
            return Err(self.api_error(&req, &reply, attempts));
        }
        let body = reply.body.unwrap_or(Value::Null);
        let flag = |k: &str| body.get(k).and_then(Value::as_bool);
        let (Some(initialized), Some(sealed)) = (flag("initialized"), flag("sealed")) else {
            return Err(VaultError::BadReply {
                op: "read",
                path: path.into(),
                why: "no initialized/sealed flags; is this a Vault or OpenBao server?".into(),
            });
        };
        if !initialized {
            return Err(VaultError::Uninitialized {
                addr: self.addr.clone(),
            });
        }
        if sealed {
            return Err(VaultError::Sealed {
                addr: self.addr.clone(),
            });
        }
        Ok(())
    }

    async fn lookup_self(&self, from: &str) -> Result<(), VaultError> {
        match self.read("auth/token/lookup-self").await {
            Ok(Some(_)) => Ok(()),
            Ok(None)
            | Err(VaultError::PermissionDenied { .. } | VaultError::TokenRejected { .. }) => {
                Err(VaultError::TokenInvalid {
                    from: from.to_string(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// `POST auth/<mount>/login`; keeps the token it returns.
    async fn login(
        &mut self,
        method: &'static str,
        mount: &str,
        body: &Value,
    ) -> Result<(), VaultError> {
        let req = Request::login(mount, body.clone());
        let path = req.path.clone();
        self.logins.fetch_add(1, Ordering::Relaxed);
        let (reply, _) = self.send(&req).await?;
        if !reply.status.is_success() {
            return Err(VaultError::LoginFailed {
                method,
                path,
                status: reply.status.as_u16(),
                message: redact(&vault_errors(reply.body.as_ref()), Some(body)),
            });
        }
        let token = reply
            .body
            .as_ref()
            .and_then(|b| b.pointer("/auth/client_token"))
            .and_then(Value::as_str)
            .ok_or_else(|| VaultError::BadReply {
                op: "write",
                path: path.clone(),
                why: "no auth.client_token in the login reply".into(),
            })?;
        self.set_token(
            &Sensitive::new(token.to_string()),
            &format!("{method} login"),
        )
    }

    /// The Vault address.
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// Requests made so far.
    pub fn requests_made(&self) -> RequestCounts {
        RequestCounts {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            logins: self.logins.load(Ordering::Relaxed),
        }
    }

    /// `GET <path>`: the reply's `data`; `None` when Vault answers 404.
    pub async fn read(&self, path: &str) -> Result<Option<Value>, VaultError> {
        self.call_data(Request::read(path)).await
    }

    /// `LIST <path>`: the reply's `data` (`keys`, `key_info`); `None` on 404
    /// (which is also how Vault says "empty").
    pub async fn list(&self, path: &str) -> Result<Option<Value>, VaultError> {
        self.call_data(Request::list(path)).await
    }

    /// `POST <path>` with a JSON body: the reply's `data`, if any. Sent
    /// once, never repeated (it may create something: a CA key, a secret
    /// ID, a mount); see [`Vault::write_idempotent`].
    pub async fn write(&self, path: &str, body: &Value) -> Result<Option<Value>, VaultError> {
        self.call_data(Request::write(path, body.clone())).await
    }

    /// `POST <path>` of a write that is idempotent by construction: sending
    /// the same body twice leaves the same state (a role, a policy, a
    /// mount's tune or config, a lookup). Repeated after a busy answer.
    pub async fn write_idempotent(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<Option<Value>, VaultError> {
        self.call_data(Request::write_idempotent(path, body.clone()))
            .await
    }

    /// `PATCH <path>` with a JSON merge patch: the reply's `data`, if any.
    /// A merge patch is idempotent: repeated after a busy answer.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Option<Value>, VaultError> {
        self.call_data(Request::patch(path, body.clone())).await
    }

    /// `DELETE <path>`. Deleting what is already gone is not an error.
    pub async fn delete(&self, path: &str) -> Result<(), VaultError> {
        self.call_data(Request::delete(path)).await.map(|_| ())
    }

    /// Sends a call and returns the reply's `data`: `None` for a 404 of a
    /// read, list or delete (absent), or a reply without data.
    async fn call_data(&self, req: Request) -> Result<Option<Value>, VaultError> {
        let (op, path) = (req.op, req.path.as_str());
        let (reply, attempts) = self.send(&req).await?;
        if reply.status == StatusCode::NOT_FOUND && (op.reads() || op == Op::Delete) {
            return Ok(None);
        }
        if reply.status == StatusCode::FORBIDDEN && self.token_rejected(path, &reply).await {
            return Err(VaultError::TokenRejected {
                op: op.name(),
                path: path.to_string(),
                from: self.token_from.clone(),
            });
        }
        if !reply.status.is_success() {
            return Err(self.api_error(&req, &reply, attempts));
        }
        match reply.body {
            None => Ok(None),
            Some(Value::Object(mut map)) => match map.remove("data") {
                Some(Value::Null) | None if op.reads() => Err(VaultError::BadReply {
                    op: op.name(),
                    path: path.to_string(),
                    why: "the reply has no data".into(),
                }),
                Some(Value::Null) | None => Ok(None),
                Some(d) => Ok(Some(d)),
            },
            Some(_) => Err(VaultError::BadReply {
                op: op.name(),
                path: path.to_string(),
                why: "the reply is not a JSON object".into(),
            }),
        }
    }

    /// Whether a 403 means the token itself is no good (invalid, expired,
    /// revoked) rather than a missing capability. Vault answers "permission
    /// denied" to both; "invalid token" in the text settles it, else the
    /// token is looked up (`auth/token/lookup-self`, which every valid
    /// token's default policy allows).
    async fn token_rejected(&self, path: &str, reply: &Reply) -> bool {
        if !self.endpoint.has_token() {
            return false;
        }
        let text = vault_errors(reply.body.as_ref());
        if text.contains("invalid token") {
            return true;
        }
        const LOOKUP: &str = "auth/token/lookup-self";
        if path.trim_matches('/') == LOOKUP {
            return false;
        }
        match self.send(&Request::read(LOOKUP)).await {
            Ok((r, _)) => r.status == StatusCode::FORBIDDEN,
            Err(_) => false,
        }
    }

    /// Sends a call, repeating it after a busy answer when it is safe to
    /// repeat; returns the last reply and how many attempts were made.
    async fn send(&self, req: &Request) -> Result<(Reply, u32), VaultError> {
        let mut attempt = 1;
        loop {
            let reply = self.send_once(req).await?;
            if req.repeat == Repeat::Safe && attempt < MAX_ATTEMPTS && busy(&reply) {
                let wait = pause(attempt, reply.retry_after);
                tracing::warn!(
                    op = req.op.name(),
                    path = req.path,
                    status = reply.status.as_u16(),
                    attempt,
                    retry_in_ms = wait.as_millis() as u64,
                    "vault is busy: retrying"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Ok((reply, attempt));
        }
    }

    /// Sends a call once: counts it, builds it, maps a transport failure
    /// (connect timeout, request timeout, no connection) and parses the
    /// reply's JSON.
    async fn send_once(&self, req: &Request) -> Result<Reply, VaultError> {
        let (op, path) = (req.op, req.path.as_str());
        if op.reads() {
            self.reads.fetch_add(1, Ordering::Relaxed);
        } else if req.with_token {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        let built = self.endpoint.build(req)?;
        let mut http = self
            .http
            .request(built.method, built.url)
            .headers(built.headers);
        if let Some(bytes) = built.body {
            http = http.body(bytes);
        }
        let transport = |e: reqwest::Error| {
            if e.is_connect() && e.is_timeout() {
                VaultError::ConnectTimeout {
                    addr: self.addr.clone(),
                    after: self.connect_timeout,
                }
            } else if e.is_timeout() {
                VaultError::Timeout {
                    addr: self.addr.clone(),
                    op: op.name(),
                    path: path.to_string(),
                    after: self.request_timeout,
                }
            } else {
                VaultError::Unreachable {
                    addr: self.addr.clone(),
                    cause: error_chain(&e.without_url()),
                }
            }
        };
        let started = std::time::Instant::now();
        let resp = http.send().await.map_err(transport)?;
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        let bytes = resp.bytes().await.map_err(transport)?;
        // Method, path and status only: bodies and headers carry secrets.
        tracing::debug!(
            op = op.name(),
            path,
            status = status.as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "vault request"
        );
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => Some(v),
                Err(_) if !status.is_success() => None,
                Err(e) => {
                    return Err(VaultError::BadReply {
                        op: op.name(),
                        path: path.to_string(),
                        why: format!("not JSON ({e})"),
                    });
                }
            }
        };
        Ok(Reply {
            status,
            body,
            retry_after,
        })
    }

    /// The error for a reply that is not a success, with Vault's message
    /// (anything the request's body carried removed).
    fn api_error(&self, req: &Request, reply: &Reply, attempts: u32) -> VaultError {
        let (op, path) = (req.op, req.path.as_str());
        let message = redact(&vault_errors(reply.body.as_ref()), req.body.as_ref());
        if reply.status == StatusCode::FORBIDDEN {
            return VaultError::PermissionDenied {
                op: op.name(),
                path: path.to_string(),
                capability: op.capability(),
            };
        }
        if reply.status == StatusCode::SERVICE_UNAVAILABLE && message.contains("sealed") {
            return VaultError::Sealed {
                addr: self.addr.clone(),
            };
        }
        if attempts > 1 && busy(reply) {
            return VaultError::Busy {
                op: op.name(),
                path: path.to_string(),
                status: reply.status.as_u16(),
                attempts,
                message,
            };
        }
        VaultError::Api {
            op: op.name(),
            path: path.to_string(),
            status: reply.status.as_u16(),
            message,
        }
    }
}

/// The HTTP client of a connection: timeouts, TLS trust and the client
/// certificate (`identity`: a PEM certificate and key given in memory, for
/// a login with another identity; else the settings' own).
fn http_client(
    settings: &VaultSettings,
    address: &str,
    identity: Option<&Sensitive>,
) -> Result<reqwest::Client, VaultError> {
    let mut b = reqwest::Client::builder()
        .tls_backend_rustls()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .user_agent(concat!("certplane/", env!("CARGO_PKG_VERSION")))
        .tls_danger_accept_invalid_certs(settings.skip_verify);
    if let Some(path) = &settings.ca_bundle {
        let tls = |why: String| VaultError::Tls {
            path: path.display().to_string(),
            why,
        };
        let pem = std::fs::read(path).map_err(|e| tls(e.to_string()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| tls(error_chain(&e)))?;
        if certs.is_empty() {
            return Err(tls("no PEM certificate in it".into()));
        }
        b = b.tls_certs_only(certs);
    } else if address.starts_with("http://") {
        // Plain HTTP needs no roots; skipping the platform verifier keeps
        // a machine without system roots working (reqwest issue 2988).
        b = b.tls_certs_only(Vec::new());
    }
    let pem = match (
        identity.or(settings.client_identity.as_ref()),
        &settings.client_cert,
        &settings.client_key,
    ) {
        (Some(pem), _, _) => Some((
            pem.expose().as_bytes().to_vec(),
            "the client certificate and key".to_string(),
        )),
        (None, Some(cert), Some(key)) => {
            let mut pem = std::fs::read(cert).map_err(|e| VaultError::Tls {
                path: cert.display().to_string(),
                why: e.to_string(),
            })?;
            let key_pem = std::fs::read(key).map_err(|e| VaultError::Tls {
                path: key.display().to_string(),
                why: e.to_string(),
            })?;
            pem.push(b'\n');
            pem.extend_from_slice(&key_pem);
            Some((pem, format!("{} + {}", cert.display(), key.display())))
        }
        _ => None,
    };
    if let Some((pem, what)) = pem {
        let identity = reqwest::Identity::from_pem(&pem).map_err(|_| VaultError::Tls {
            path: what,
            why: "not a PEM certificate and private key pair".into(),
        })?;
        b = b.identity(identity);
    }
    b.build().map_err(|e| VaultError::Client {
        cause: error_chain(&e),
    })
}

/// What Vault says about the token in use (`lookup-self`, `renew-self`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// Seconds the token has left; `None`: it never expires (a root token).
    pub ttl: Option<u64>,
    /// Whether `renew-self` can extend it.
    pub renewable: bool,
}

impl Vault {
    /// `GET auth/token/lookup-self`: the remaining TTL of the token in use
    /// and whether it is renewable.
    pub async fn token_info(&self) -> Result<TokenInfo, VaultError> {
        let path = "auth/token/lookup-self";
        let data = self.read(path).await?.ok_or_else(|| VaultError::BadReply {
            op: "read",
            path: path.into(),
            why: "the token is unknown".into(),
        })?;
        let ttl = data.get("ttl").and_then(Value::as_u64).unwrap_or(0);
        Ok(TokenInfo {
            ttl: (ttl > 0).then_some(ttl),
            renewable: data
                .get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// `POST auth/token/renew-self`: extends the token in use (Vault caps the
    /// new TTL at the token's max TTL); returns the new lease.
    pub async fn renew_self(&self) -> Result<TokenInfo, VaultError> {
        let req = Request::write_idempotent("auth/token/renew-self", serde_json::json!({}));
        let path = req.path.as_str();
        let (reply, attempts) = self.send(&req).await?;
        if !reply.status.is_success() {
            return Err(self.api_error(&req, &reply, attempts));
        }
        let auth = reply
            .body
            .as_ref()
            .and_then(|b| b.get("auth"))
            .ok_or_else(|| VaultError::BadReply {
                op: "write",
                path: path.into(),
                why: "no auth in the renewal reply".into(),
            })?;
        let ttl = auth
            .get("lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok(TokenInfo {
            ttl: (ttl > 0).then_some(ttl),
            renewable: auth
                .get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

/// Vault's `errors` list as one line.
fn vault_errors(body: Option<&Value>) -> String {
    let errors: Vec<String> = body
        .and_then(|b| b.get("errors"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| match e {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let text = errors.join("; ").replace(['\n', '\r'], " ");
    if text.trim().is_empty() {
        "(no error message)".into()
    } else {
        text
    }
}

/// Removes from `message` anything the request carried that could be a
/// secret: every string value of the body of 12 characters or more, and
/// every such line of a multi-line value (a PEM block).
pub(crate) fn redact(message: &str, body: Option<&Value>) -> String {
    fn collect<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) => {
                out.push(s.as_str());
                out.extend(s.lines().map(str::trim));
            }
            Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
            Value::Object(m) => m.values().for_each(|x| collect(x, out)),
            _ => {}
        }
    }
    let mut secrets = Vec::new();
    if let Some(b) = body {
        collect(b, &mut secrets);
    }
    secrets.retain(|s| s.len() >= 12);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = message.to_string();
    for s in secrets {
        if out.contains(s) {
            out = out.replace(s, "(redacted)");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redact_removes_secrets_and_pem_lines() {
        let body = json!({"secret_id": "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab", "role_id": "short",
            "pem_bundle": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"});
        let msg = "invalid secret 0f1e2d3c-aaaa-bbbb-cccc-1234567890ab near MIIEvQIBADANBgkqhkiG9w0BAQEFAASC for short";
        let out = redact(msg, Some(&body));
        assert!(!out.contains("0f1e2d3c"), "{out}");
        assert!(!out.contains("MIIEvQ"), "{out}");
        assert!(out.contains("for short"), "{out}");
    }

    fn reply(status: u16, errors: &[&str]) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            body: Some(json!({ "errors": errors })),
            retry_after: None,
        }
    }

    #[test]
    fn busy_answers_are_retried_but_a_sealed_vault_is_not() {
        assert!(busy(&reply(429, &["rate limit quota exceeded"])));
        assert!(busy(&reply(503, &["overloaded"])));
        assert!(busy(&reply(502, &[])));
        assert!(!busy(&reply(503, &["Vault is sealed"])));
        assert!(!busy(&reply(500, &["internal error"])));
        assert!(!busy(&reply(403, &["permission denied"])));
    }

    #[test]
    fn retry_after_is_honoured_and_capped_else_backoff_doubles() {
        assert_eq!(
            pause(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(pause(1, Some(Duration::from_secs(3600))), MAX_RETRY_AFTER);
        assert_eq!(pause(1, None), FIRST_BACKOFF);
        assert_eq!(pause(3, None), FIRST_BACKOFF * 4);
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static(" 7 "),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn vault_errors_are_one_line() {
        let b = json!({"errors": ["a\nb", "c"]});
        assert_eq!(vault_errors(Some(&b)), "a b; c");
        assert_eq!(vault_errors(None), "(no error message)");
    }
}
