//! Vault API requests, built without I/O: the method, the URL (each path
//! segment escaped), the query, the headers (the token marked sensitive,
//! the namespace, the content type) and the body. [`super::client`] sends
//! what is built here; like kube-core's `Request`, every part of a request
//! is unit-testable without a server.

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::Value;

use super::VaultError;
use crate::model::Sensitive;

/// The kind of a call, as Vault's audit log names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `GET`.
    Read,
    /// `LIST`.
    List,
    /// `POST` with a JSON body.
    Write,
    /// `PATCH` with a JSON merge patch.
    Patch,
    /// `DELETE`.
    Delete,
}

impl Op {
    /// Its name in messages and logs (`read`, `list`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::List => "list",
            Op::Write => "write",
            Op::Patch => "patch",
            Op::Delete => "delete",
        }
    }

    /// The policy capability the call needs.
    pub fn capability(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::List => "list",
            Op::Write => "update",
            Op::Patch => "patch",
            Op::Delete => "delete",
        }
    }

    /// The HTTP method.
    pub fn method(self) -> Method {
        match self {
            Op::Read => Method::GET,
            Op::List => Method::from_bytes(b"LIST").unwrap_or(Method::GET),
            Op::Write => Method::POST,
            Op::Patch => Method::PATCH,
            Op::Delete => Method::DELETE,
        }
    }

    /// Whether it only reads (counted as a read; a 404 means "absent").
    pub fn reads(self) -> bool {
        matches!(self, Op::Read | Op::List)
    }
}

/// Whether a call may be sent again after a busy answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// Safe to repeat: reads, deletes, merge patches, idempotent writes.
    Safe,
    /// Never repeated: a second send could make a second object (a CA key,
    /// a secret ID, a mount, a login).
    Once,
}

/// One call: what to do, where, with what. Holds the body (which may carry
/// a secret: a login's secret ID, a CA bundle), so its `Debug` shows only
/// the operation and path.
#[derive(Clone, PartialEq)]
pub struct Request {
    /// The operation.
    pub op: Op,
    /// The API path, without `/v1`.
    pub path: String,
    /// Query parameters.
    pub query: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: Option<Value>,
    /// Whether the token goes with it (not for the health check and logins).
    pub with_token: bool,
    /// Whether it may be sent again after a busy answer.
    pub repeat: Repeat,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.op.name(), self.path)
    }
}

impl Request {
    fn new(op: Op, path: impl Into<String>, body: Option<Value>, repeat: Repeat) -> Request {
        Request {
            op,
            path: path.into(),
            query: Vec::new(),
            body,
            with_token: true,
            repeat,
        }
    }

    /// `GET <path>`.
    pub fn read(path: impl Into<String>) -> Request {
        Request::new(Op::Read, path, None, Repeat::Safe)
    }

    /// `LIST <path>`.
    pub fn list(path: impl Into<String>) -> Request {
        Request::new(Op::List, path, None, Repeat::Safe)
    }

    /// `POST <path>`, sent once: it may create something.
    pub fn write(path: impl Into<String>, body: Value) -> Request {
        Request::new(Op::Write, path, Some(body), Repeat::Once)
    }

    /// `POST <path>` of a write that is idempotent by construction (a role,
    /// a policy, a tune): repeated after a busy answer.
    pub fn write_idempotent(path: impl Into<String>, body: Value) -> Request {
        Request::new(Op::Write, path, Some(body), Repeat::Safe)
    }

    /// `PATCH <path>` with a JSON merge patch (idempotent).
    pub fn patch(path: impl Into<String>, body: Value) -> Request {
        Request::new(Op::Patch, path, Some(body), Repeat::Safe)
    }

    /// `DELETE <path>`.
    pub fn delete(path: impl Into<String>) -> Request {
        Request::new(Op::Delete, path, None, Repeat::Safe)
    }

    /// `GET sys/health` with the codes that make every state answer 200,
    /// so that sealed and uninitialised can be told apart in one reply.
    pub fn health() -> Request {
        let mut r = Request::read("sys/health").without_token();
        for (k, v) in [
            ("standbyok", "true"),
            ("perfstandbyok", "true"),
            ("sealedcode", "200"),
            ("uninitcode", "200"),
        ] {
            r.query.push((k, v.to_string()));
        }
        r
    }

    /// `POST auth/<mount>/login`: without a token, sent once.
    pub fn login(mount: &str, body: Value) -> Request {
        Request::write(format!("auth/{}/login", mount.trim_matches('/')), body).without_token()
    }

    /// The same request without the token.
    pub fn without_token(mut self) -> Request {
        self.with_token = false;
        self
    }
}

/// A request ready to send: nothing left to decide.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The URL, query included.
    pub url: Url,
    /// The headers (the token's value is marked sensitive).
    pub headers: HeaderMap,
    /// The body's bytes.
    pub body: Option<Vec<u8>>,
}

/// Where requests go, and as whom: the base URL (`<address>/v1`), the
/// namespace header and the token. `Debug` never shows the token.
#[derive(Clone)]
pub struct Endpoint {
    base: Url,
    namespace: Option<HeaderValue>,
    token: Option<HeaderValue>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base", &self.base.as_str())
            .field("namespace", &self.namespace)
            .field("logged_in", &self.token.is_some())
            .finish()
    }
}

const VAULT_REQUEST: HeaderName = HeaderName::from_static("x-vault-request");
const VAULT_TOKEN: HeaderName = HeaderName::from_static("x-vault-token");
const VAULT_NAMESPACE: HeaderName = HeaderName::from_static("x-vault-namespace");

impl Endpoint {
    /// The endpoint of a checked `http(s)://` address (see
    /// [`super::connect::check_address`]) and namespace.
    pub fn new(address: &str, namespace: Option<&str>) -> Result<Endpoint, VaultError> {
        let mut base = Url::parse(address).map_err(|e| VaultError::InvalidAddress {
            address: address.to_string(),
            why: e.to_string(),
        })?;
        base.path_segments_mut()
            .map_err(|()| VaultError::InvalidAddress {
                address: address.to_string(),
                why: "it cannot be a base URL".into(),
            })?
            .pop_if_empty()
            .push("v1");
        let namespace = match namespace.map(str::trim) {
            Some(ns) if !ns.is_empty() => {
                Some(
                    HeaderValue::from_str(ns).map_err(|_| VaultError::InvalidSetting {
                        name: "namespace".into(),
                        value: ns.to_string(),
                        why: "it must be printable ASCII".into(),
                    })?,
                )
            }
            _ => None,
        };
        Ok(Endpoint {
            base,
            namespace,
            token: None,
        })
    }

    /// Sets the token sent with every request that takes one. `from` says
    /// where it came from (never the token), for the error.
    pub fn set_token(&mut self, token: &Sensitive, from: &str) -> Result<(), VaultError> {
        let t = token.expose().trim();
        if t.is_empty() {
            return Err(VaultError::NoToken);
        }
        let malformed = || VaultError::MalformedToken {
            from: from.to_string(),
        };
        if !t.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(malformed());
        }
        let mut value = HeaderValue::from_str(t).map_err(|_| malformed())?;
        value.set_sensitive(true);
        self.token = Some(value);
        Ok(())
    }

    /// Whether a token is set.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The URL of an API path: each segment escaped on its own (a `?` or a
    /// space in a name stays in the name), empty segments dropped.
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.extend(path.split('/').filter(|s| !s.is_empty()));
        }
        url
    }

    /// The request as it goes on the wire.
    pub fn build(&self, req: &Request) -> Result<HttpRequest, VaultError> {
        let mut url = self.url(&req.path);
        if !req.query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &req.query {
                q.append_pair(k, v);
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(VAULT_REQUEST, HeaderValue::from_static("true"));
        if req.with_token
            && let Some(t) = &self.token
        {
            headers.insert(VAULT_TOKEN, t.clone());
        }
        if let Some(ns) = &self.namespace {
            headers.insert(VAULT_NAMESPACE, ns.clone());
        }
        let body = match &req.body {
            Some(b) => {
                let content_type = if req.op == Op::Patch {
                    "application/merge-patch+json"
                } else {
                    "application/json"
                };
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                Some(serde_json::to_vec(b).map_err(|e| VaultError::Client {
                    cause: e.to_string(),
                })?)
            }
            None => None,
        };
        Ok(HttpRequest {
            method: req.op.method(),
            url,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoint() -> Endpoint {
        Endpoint::new("http://127.0.0.1:8200/", None).unwrap()
    }

    #[test]
    fn paths_are_escaped_per_segment() {
        let e = endpoint();
        assert_eq!(
            e.url("pki/roles/a b?x").as_str(),
            "http://127.0.0.1:8200/v1/pki/roles/a%20b%3Fx"
        );
        assert_eq!(
            e.url("/sys/mounts/").as_str(),
            "http://127.0.0.1:8200/v1/sys/mounts"
        );
        assert_eq!(
            e.url("pki//issuer/a%2Fb").as_str(),
            "http://127.0.0.1:8200/v1/pki/issuer/a%252Fb",
            "a % in a name is data, not an escape"
        );
        let behind = Endpoint::new("https://vault.example.com/prefix", None).unwrap();
        assert_eq!(
            behind.url("sys/health").as_str(),
            "https://vault.example.com/prefix/v1/sys/health"
        );
    }

    #[test]
    fn reads_and_lists_carry_the_token_marked_sensitive() {
        let mut e = endpoint();
        e.set_token(
            &Sensitive::new(" hvs.secret-token \n".into()),
            "env VAULT_TOKEN",
        )
        .unwrap();
        let r = e.build(&Request::list("pki/roles")).unwrap();
        assert_eq!(r.method.as_str(), "LIST");
        assert!(r.body.is_none());
        assert!(!r.headers.contains_key(CONTENT_TYPE));
        let token = &r.headers[VAULT_TOKEN];
        assert_eq!(token.as_bytes(), b"hvs.secret-token");
        assert!(token.is_sensitive());
        assert!(!format!("{r:?}").contains("secret-token"), "{r:?}");
        assert!(!format!("{e:?}").contains("secret-token"), "{e:?}");
        assert_eq!(r.headers[VAULT_REQUEST], "true");
        assert_eq!(e.build(&Request::read("x")).unwrap().method, Method::GET);
    }

    #[test]
    fn the_namespace_header_goes_with_every_request() {
        let e = Endpoint::new("http://127.0.0.1:8200", Some(" team-a/pki ")).unwrap();
        for req in [
            Request::read("x"),
            Request::health(),
            Request::login("a", json!({})),
        ] {
            assert_eq!(
                e.build(&req).unwrap().headers[VAULT_NAMESPACE],
                "team-a/pki"
            );
        }
        assert!(
            !endpoint()
                .build(&Request::read("x"))
                .unwrap()
                .headers
                .contains_key(VAULT_NAMESPACE)
        );
        assert!(matches!(
            Endpoint::new("http://127.0.0.1:8200", Some("team\na")),
            Err(VaultError::InvalidSetting { .. })
        ));
    }

    #[test]
    fn a_merge_patch_has_its_content_type_and_a_write_json() {
        let e = endpoint();
        let p = e
            .build(&Request::patch("pki/issuer/x", json!({"issuer_name": "a"})))
            .unwrap();
        assert_eq!(p.method, Method::PATCH);
        assert_eq!(p.headers[CONTENT_TYPE], "application/merge-patch+json");
        assert_eq!(p.body.as_deref(), Some(&br#"{"issuer_name":"a"}"#[..]));
        let w = e
            .build(&Request::write("pki/roles/web", json!({"ttl": 60})))
            .unwrap();
        assert_eq!(w.method, Method::POST);
        assert_eq!(w.headers[CONTENT_TYPE], "application/json");
        assert_eq!(
            e.build(&Request::delete("x")).unwrap().method,
            Method::DELETE
        );
    }

    #[test]
    fn health_and_login_go_without_the_token() {
        let mut e = endpoint();
        e.set_token(&Sensitive::new("hvs.t".into()), "test")
            .unwrap();
        let h = e.build(&Request::health()).unwrap();
        assert!(!h.headers.contains_key(VAULT_TOKEN));
        assert_eq!(
            h.url.as_str(),
            "http://127.0.0.1:8200/v1/sys/health?standbyok=true&perfstandbyok=true&sealedcode=200&uninitcode=200"
        );
        let login = Request::login("/approle/", json!({"role_id": "r"}));
        assert_eq!(login.path, "auth/approle/login");
        assert_eq!(login.repeat, Repeat::Once);
        assert!(!e.build(&login).unwrap().headers.contains_key(VAULT_TOKEN));
        assert_eq!(format!("{login:?}"), "write auth/approle/login");
    }

    #[test]
    fn what_may_be_repeated() {
        assert_eq!(Request::write("a", json!({})).repeat, Repeat::Once);
        for r in [
            Request::read("a"),
            Request::list("a"),
            Request::write_idempotent("a", json!({})),
            Request::patch("a", json!({})),
            Request::delete("a"),
        ] {
            assert_eq!(r.repeat, Repeat::Safe, "{r:?}");
        }
    }

    #[test]
    fn tokens_that_cannot_be_a_header_are_refused_naming_their_source() {
        let mut e = endpoint();
        assert!(matches!(
            e.set_token(&Sensitive::new("  ".into()), "x"),
            Err(VaultError::NoToken)
        ));
        let err = e
            .set_token(&Sensitive::new("two words".into()), "file ~/.vault-token")
            .unwrap_err();
        assert!(err.to_string().contains("file ~/.vault-token"), "{err}");
        assert!(!err.to_string().contains("two words"), "{err}");
        assert!(!e.has_token());
    }
}
