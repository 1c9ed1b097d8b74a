//! A fault-injecting HTTP/1.1 proxy on a loopback port, in front of a real
//! OpenBao, and a blackholed port.
//!
//! The proxy forwards every request unchanged, except those a scripted
//! [`Fault`] names, the next given number of times:
//!
//! * [`FaultKind::Status`]: Vault never sees the request; the client gets a
//!   canned status (429, 503...) with an optional `Retry-After`, on a
//!   connection that stays open (as a busy Vault answers);
//! * [`FaultKind::Error`]: the same, with a given message in Vault's
//!   `errors` list;
//! * [`FaultKind::DropReply`]: the server does the work, then the client's
//!   connection is closed without any of the reply (what a crash, a killed
//!   process or a timeout looks like to certplane);
//! * [`FaultKind::Delay`]: the reply is held this long before it is sent.
//!
//! Every request is logged when it arrives ([`Seen`]: method, path, the
//! status sent back, when), so a test can count attempts, wait for a
//! request in flight and measure the pauses between attempts. A forwarded
//! request goes on a fresh upstream connection with `Connection: close`, so
//! the reply is everything the server sends until it closes; it is relayed
//! as is, and the client's connection closes after it. Stopped on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `GET`, `LIST`, `POST`, `DELETE`...
    pub method: String,
    /// The API path without `/v1/` and without the query.
    pub path: String,
    /// The status sent back (or Vault's, when its reply was dropped); 0
    /// while the request is in flight or when Vault never answered.
    pub status: u16,
    /// Whether the status was injected (Vault never saw the request).
    pub injected: bool,
    /// When the request arrived.
    pub at: Instant,
}

/// What to do to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer `status` instead of Vault, with `Retry-After: <secs>` when
    /// given.
    Status {
        /// The status code.
        status: u16,
        /// The `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// Answer `status` instead of Vault, with this message in Vault's
    /// `errors` list (a refusal Vault really gives, e.g. while a KV mount
    /// is being upgraded).
    Error {
        /// The status code.
        status: u16,
        /// The error message.
        message: String,
    },
    /// Forward it, wait for the whole reply, then close the client's
    /// connection without sending any of it.
    DropReply,
    /// Forward it and hold the reply this long before sending it.
    Delay(Duration),
}

/// A fault for the next `times` requests whose method is `method` and whose
/// path (after `/v1/`) is `path`.
#[derive(Clone, Debug)]
pub struct Fault {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The API path, e.g. `pki/root/sign-intermediate`.
    pub path: String,
    /// What to do.
    pub kind: FaultKind,
    /// How many matching requests it applies to.
    pub times: usize,
}

impl Fault {
    /// Drops the reply of the next `POST <path>`.
    pub fn drop_post(path: &str) -> Fault {
        Fault {
            method: "POST".into(),
            path: path.into(),
            kind: FaultKind::DropReply,
            times: 1,
        }
    }
}

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    seen: Vec<Seen>,
    faulted: Vec<String>,
}

/// The proxy.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`
    /// (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://127.0.0.1:PORT");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, upstream, &st));
            }
        });
        FaultProxy { addr, state, stop }
    }

    /// `http://127.0.0.1:<port>`: give this to certplane as the Vault address.
    pub fn addr(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a fault.
    pub fn fault(&self, mut fault: Fault) {
        fault.path = fault.path.trim_matches('/').to_string();
        self.state.lock().unwrap().faults.push(fault);
    }

    /// The next `times` requests `method path` (path without `/v1/`) get
    /// `status`, with `Retry-After: <secs>` when given.
    pub fn fail(
        &self,
        method: &str,
        path: &str,
        status: u16,
        retry_after: Option<u64>,
        times: usize,
    ) {
        self.fault(Fault {
            method: method.to_string(),
            path: path.to_string(),
            kind: FaultKind::Status {
                status,
                retry_after,
            },
            times,
        });
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The requests `method path` so far.
    pub fn seen_at(&self, method: &str, path: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == method && s.path == path.trim_matches('/'))
            .collect()
    }

    /// How many requests `method path` arrived so far (in flight included).
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.seen_at(method, path).len()
    }

    /// The requests a fault was applied to (`METHOD path`), in order.
    pub fn faulted(&self) -> Vec<String> {
        self.state.lock().unwrap().faulted.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// A request as read from the client.
struct Request {
    method: String,
    path: String,
    head: Vec<String>,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let mut first = head.first()?.split_whitespace();
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let length: usize = head
        .iter()
        .find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    let path = target
        .split('?')
        .next()
        .unwrap_or("")
        .trim_start_matches("/v1/")
        .trim_matches('/')
        .to_string();
    Some(Request {
        method,
        path,
        head,
        body,
    })
}

/// Logs the request's arrival and takes the fault that applies to it, if
/// any; the index of its log entry.
fn arrive(state: &Mutex<State>, req: &Request) -> (usize, Option<FaultKind>) {
    let mut s = state.lock().unwrap();
    let kind = s
        .faults
        .iter_mut()
        .find(|f| f.times > 0 && f.method == req.method && f.path == req.path)
        .map(|f| {
            f.times -= 1;
            f.kind.clone()
        });
    if kind.is_some() {
        s.faulted.push(format!("{} {}", req.method, req.path));
    }
    s.seen.push(Seen {
        method: req.method.clone(),
        path: req.path.clone(),
        status: 0,
        injected: matches!(
            kind,
            Some(FaultKind::Status { .. } | FaultKind::Error { .. })
        ),
        at: Instant::now(),
    });
    (s.seen.len() - 1, kind)
}

fn serve(conn: TcpStream, upstream: SocketAddr, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
    let Ok(mut client) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    while let Some(req) = read_request(&mut reader) {
        let (entry, fault) = arrive(state, &req);
        let canned = match fault {
            Some(FaultKind::Status {
                status,
                retry_after,
            }) => Some((
                status,
                retry_after,
                format!("injected {status} by the test proxy"),
            )),
            Some(FaultKind::Error {
                status,
                ref message,
            }) => Some((status, None, message.clone())),
            _ => None,
        };
        if let Some((status, retry_after, message)) = canned {
            let body = serde_json::json!({ "errors": [message] }).to_string();
            let mut resp = format!(
                "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            );
            if let Some(s) = retry_after {
                resp.push_str(&format!("Retry-After: {s}\r\n"));
            }
            resp.push_str("\r\n");
            resp.push_str(&body);
            state.lock().unwrap().seen[entry].status = status;
            if client.write_all(resp.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let Some(reply) = forward(upstream, &req) else {
            return;
        };
        state.lock().unwrap().seen[entry].status = String::from_utf8_lossy(&reply)
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        match fault {
            Some(FaultKind::DropReply) => {
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            Some(FaultKind::Delay(d)) => std::thread::sleep(d),
            _ => {}
        }
        if client.write_all(&reply).is_ok() {
            let _ = client.shutdown(Shutdown::Both);
        }
        return;
    }
}

/// Sends `req` to `upstream` on a fresh connection that closes after the
/// reply; what the server sent until it closed (or the read timed out),
/// `None` when it cannot be reached.
fn forward(upstream: SocketAddr, req: &Request) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).ok()?;
    let _ = up.set_read_timeout(Some(Duration::from_secs(60)));
    let mut out = Vec::new();
    for h in &req.head {
        let name = h.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&req.body);
    up.write_all(&out).ok()?;
    let mut reply = Vec::new();
    let _ = up.read_to_end(&mut reply);
    Some(reply)
}

/// A loopback port where a TCP connection is never established: a listener
/// that never accepts, its accept queue filled, so the kernel drops every
/// further SYN (what a firewall that drops packets looks like to a client).
pub struct Blackhole {
    addr: SocketAddr,
    _listener: TcpListener,
    _held: Vec<TcpStream>,
}

impl Blackhole {
    /// Binds and fills the queue.
    pub fn start() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the blackhole");
        let addr = listener.local_addr().expect("blackhole address");
        let mut held = Vec::new();
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
            assert!(
                held.len() < 5000,
                "the accept queue never filled: cannot make a blackhole"
            );
        }
        Blackhole {
            addr,
            _listener: listener,
            _held: held,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("http://{}", self.addr)
    }
}
