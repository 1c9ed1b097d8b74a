//! A fault-injecting HTTP proxy on a loopback port, in front of a real
//! OpenBao: requests are forwarded unchanged, except those matching a
//! scripted fault, which get a canned status (429, 503...) with an optional
//! `Retry-After` instead, a given number of times. Every request is logged
//! (method, path, status, when), so a test can count attempts and measure
//! the pauses between them. Stopped on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
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
    /// The status sent back.
    pub status: u16,
    /// Whether the status was injected (not Vault's).
    pub injected: bool,
    /// When the request arrived.
    pub at: Instant,
}

struct Fault {
    method: String,
    path: String,
    status: u16,
    retry_after: Option<u64>,
    left: usize,
}

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    seen: Vec<Seen>,
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
        self.state.lock().unwrap().faults.push(Fault {
            method: method.to_string(),
            path: path.trim_matches('/').to_string(),
            status,
            retry_after,
            left: times,
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
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut head = vec![line.trim_end().to_string()];
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end().to_string();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
        head.push(h);
    }
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

fn serve(conn: TcpStream, upstream: SocketAddr, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    while let Some(req) = read_request(&mut reader) {
        let at = Instant::now();
        let injected = {
            let mut s = state.lock().unwrap();
            let hit = s
                .faults
                .iter_mut()
                .find(|f| f.left > 0 && f.method == req.method && f.path == req.path);
            hit.map(|f| {
                f.left -= 1;
                (f.status, f.retry_after)
            })
        };
        if let Some((status, retry_after)) = injected {
            let body = format!("{{\"errors\":[\"injected {status} by the test proxy\"]}}");
            let mut resp = format!(
                "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            );
            if let Some(s) = retry_after {
                resp.push_str(&format!("Retry-After: {s}\r\n"));
            }
            resp.push_str("\r\n");
            resp.push_str(&body);
            record(state, &req, status, true, at);
            if out.write_all(resp.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        // Forward on a fresh connection that closes after the reply; the
        // client's connection closes too (the reply says so).
        let Ok(mut up) = TcpStream::connect(upstream) else {
            return;
        };
        let mut head: Vec<&String> = req
            .head
            .iter()
            .filter(|h| {
                let k = h.split(':').next().unwrap_or("").trim();
                !k.eq_ignore_ascii_case("connection") && !k.eq_ignore_ascii_case("keep-alive")
            })
            .collect();
        let close = "Connection: close".to_string();
        head.push(&close);
        let mut bytes = head
            .iter()
            .map(|h| h.as_str())
            .collect::<Vec<_>>()
            .join("\r\n")
            .into_bytes();
        bytes.extend_from_slice(b"\r\n\r\n");
        bytes.extend_from_slice(&req.body);
        if up.write_all(&bytes).is_err() {
            return;
        }
        let mut reply = Vec::new();
        let _ = up.read_to_end(&mut reply);
        let status = String::from_utf8_lossy(&reply)
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        record(state, &req, status, false, at);
        let _ = out.write_all(&reply);
        return;
    }
}

fn record(state: &Mutex<State>, req: &Request, status: u16, injected: bool, at: Instant) {
    state.lock().unwrap().seen.push(Seen {
        method: req.method.clone(),
        path: req.path.clone(),
        status,
        injected,
        at,
    });
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
