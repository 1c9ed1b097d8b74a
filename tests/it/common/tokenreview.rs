//! The TokenReview API of a Kubernetes API server, as OpenBao's Kubernetes
//! auth calls it (`POST /apis/authentication.k8s.io/v1/tokenreviews`), on a
//! loopback port, behaving as a real API server does:
//!
//! * the caller must present a credential the server accepts: only the
//!   reviewer token (a ServiceAccount bound to `system:auth-delegator`) is;
//!   any other bearer, in particular the audience-bound token being
//!   reviewed, gets `401 Unauthorized`;
//! * a reviewed token is authenticated when it is one of the tokens this
//!   server issued ([`TokenReviewServer::issue`]) and the audiences asked
//!   for are among the token's.
//!
//! Every request is recorded (the bearer and the reviewed token), so a test
//! can show which identity Vault reviewed with.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// One TokenReview request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    /// The `Authorization: Bearer` credential of the caller.
    pub bearer: String,
    /// The token to review (`spec.token`).
    pub token: String,
    /// The audiences asked for (`spec.audiences`).
    pub audiences: Vec<String>,
    /// The status code answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    /// token -> (namespace, service account, audiences)
    issued: BTreeMap<String, (String, String, Vec<String>)>,
    reviews: Vec<Review>,
}

/// A running fake API server for TokenReview.
pub struct TokenReviewServer {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A service account token: a JWT with the claims a real one has (not
/// signed by a key Vault knows: Vault relies on TokenReview for that).
pub fn sa_jwt(namespace: &str, name: &str, audiences: &[&str]) -> String {
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "aud": audiences,
        "iat": now, "nbf": now, "exp": now + 600,
        "kubernetes.io": {"namespace": namespace,
            "serviceaccount": {"name": name, "uid": "3f1c0000-0000-4000-8000-000000000001"}},
    });
    format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "kid": "test"})),
        b64(&claims),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("sig-{namespace}-{name}"))
    )
}

impl TokenReviewServer {
    /// Starts a server that accepts `reviewer` as the caller's credential.
    pub fn start(reviewer: &str) -> TokenReviewServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp, rv) = (state.clone(), stop.clone(), reviewer.to_string());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = conn {
                    let _ = serve(stream, &rv, &st);
                }
            }
        });
        TokenReviewServer {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`: the `kubernetes_host` for Vault.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Issues a token for `namespace/name` with these audiences (as a
    /// TokenRequest would) and returns it.
    pub fn issue(&self, namespace: &str, name: &str, audiences: &[&str]) -> String {
        let token = sa_jwt(namespace, name, audiences);
        self.state.lock().unwrap().issued.insert(
            token.clone(),
            (
                namespace.to_string(),
                name.to_string(),
                audiences.iter().map(|a| a.to_string()).collect(),
            ),
        );
        token
    }

    /// Every review so far.
    pub fn reviews(&self) -> Vec<Review> {
        self.state.lock().unwrap().reviews.clone()
    }
}

impl Drop for TokenReviewServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, reviewer: &str, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let bearer = headers
        .get("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let token = body["spec"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let audiences: Vec<String> = body["spec"]["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let is_review = request_line.starts_with("POST /apis/authentication.k8s.io/v1/tokenreviews");
    let (status, reply) = if !is_review {
        (
            404,
            json!({"kind": "Status", "code": 404, "reason": "NotFound"}),
        )
    } else if bearer != reviewer {
        (
            401,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
        )
    } else {
        let st = state.lock().unwrap();
        let status = match st.issued.get(&token) {
            Some((ns, sa, auds))
                if audiences.is_empty() || audiences.iter().any(|a| auds.contains(a)) =>
            {
                json!({"authenticated": true,
                       "user": {"username": format!("system:serviceaccount:{ns}:{sa}"),
                                "uid": "3f1c0000-0000-4000-8000-000000000001",
                                "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}")]},
                       "audiences": if audiences.is_empty() { auds.clone() } else { audiences.clone() }})
            }
            _ => json!({"authenticated": false, "error": "invalid bearer token"}),
        };
        (
            201,
            json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                   "metadata": {}, "spec": body["spec"], "status": status}),
        )
    };
    state.lock().unwrap().reviews.push(Review {
        bearer,
        token,
        audiences,
        status,
    });
    let bytes = serde_json::to_vec(&reply).unwrap();
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    )?;
    out.write_all(&bytes)?;
    out.flush()
}
