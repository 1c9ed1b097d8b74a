//! A fault-injecting HTTP/1.1 proxy on a loopback port, in front of a test
//! OpenBao: it forwards every request, and for the requests a [`Fault`]
//! names it lets the server do the work and then drops the reply (what a
//! crash, a killed process or a timeout looks like to certplane) or delays
//! it. It counts the requests it saw by path.
//!
//! Each request is forwarded on its own upstream connection with
//! `Connection: close`, so the reply is everything the server sends until it
//! closes; the reply is relayed as is.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
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
    seen: BTreeMap<String, usize>,
    faulted: Vec<String>,
}

/// The running proxy (its threads end with the test process).
pub struct FaultProxy {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:<port>`).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let state = shared.clone();
                let upstream = upstream.clone();
                std::thread::spawn(move || serve(conn, &upstream, &state));
            }
        });
        FaultProxy { port, state }
    }

    /// `http://127.0.0.1:<port>`: give this to certplane as the Vault.
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Adds a fault.
    pub fn fault(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push(fault);
    }

    /// Removes every fault not used up yet.
    pub fn clear(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// How many requests `METHOD path` went through so far.
    pub fn seen(&self, method: &str, path: &str) -> usize {
        let key = format!("{method} {path}");
        self.state
            .lock()
            .unwrap()
            .seen
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    /// The requests a fault was applied to (`METHOD path`), in order.
    pub fn faulted(&self) -> Vec<String> {
        self.state.lock().unwrap().faulted.clone()
    }
}

/// A request as read from the client: its head lines and body.
struct Request {
    method: String,
    path: String,
    head: Vec<String>,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let mut first = head.first()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let path = target
        .split('?')
        .next()
        .unwrap_or("")
        .trim_start_matches("/v1/")
        .to_string();
    let len: usize = head
        .iter()
        .find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        head,
        body,
    })
}

fn serve(conn: TcpStream, upstream: &str, state: &Mutex<State>) {
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let mut client = write_half;
    let mut reader = BufReader::new(conn);
    // One request per connection: the upstream closes after its reply, and
    // so does the client's side.
    if let Some(req) = read_request(&mut reader) {
        let fault = {
            let mut s = state.lock().unwrap();
            *s.seen
                .entry(format!("{} {}", req.method, req.path))
                .or_default() += 1;
            let hit = s
                .faults
                .iter_mut()
                .find(|f| f.times > 0 && f.method == req.method && f.path == req.path);
            let kind = hit.map(|f| {
                f.times -= 1;
                f.kind.clone()
            });
            if kind.is_some() {
                s.faulted.push(format!("{} {}", req.method, req.path));
            }
            kind
        };
        let Ok(mut up) = TcpStream::connect(upstream) else {
            return;
        };
        let _ = up.set_read_timeout(Some(Duration::from_secs(60)));
        let mut out = Vec::new();
        for h in &req.head {
            let name = h.split(':').next().unwrap_or("");
            if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
                continue;
            }
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&req.body);
        if up.write_all(&out).is_err() {
            return;
        }
        let mut reply = Vec::new();
        if up.read_to_end(&mut reply).is_err() {
            return;
        }
        match fault {
            Some(FaultKind::DropReply) => {
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            Some(FaultKind::Delay(d)) => std::thread::sleep(d),
            None => {}
        }
        if client.write_all(&reply).is_ok() {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}
