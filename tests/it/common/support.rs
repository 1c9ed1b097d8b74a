//! Helpers of the end-to-end tests (`tests/e2e_*.rs`): run the `certplane`
//! binary with a clean environment, copy example repositories, make CAs with
//! rcgen, give certplane an AppRole, and read what OpenBao holds. The server
//! itself is the shared harness, `tests/common` ([`OpenBao`]).

#![allow(dead_code)] // Each e2e binary uses a different subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::OpenBao;

/// The repository's `examples/homelab`.
pub fn homelab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/homelab")
}

/// One finished run of the binary.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Run {
    /// Both streams, for assertion messages.
    pub fn both(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Panics (with both streams) unless the exit code is `code`.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.both());
        self
    }
}

/// Runs `certplane <args>` with stdin not a terminal (null), no Vault
/// settings inherited from the caller, `HOME` pointing at `home` (no
/// `~/.vault-token`), colours off, and then `env`. There is no cluster here:
/// `plan` and `apply` render the cluster half into `home/rendered`.
pub fn certplane(args: &[&str], env: &[(&str, &str)], home: &Path) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certplane"));
    let rendered = home.join("rendered");
    let mut args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    if matches!(
        args.first().and_then(|a| a.to_str()),
        Some("plan" | "apply")
    ) && !args.iter().any(|a| *a == "--render")
    {
        args.insert(1, std::ffi::OsStr::new("--render"));
        args.insert(2, rendered.as_os_str());
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("HOME", home)
        .env("NO_COLOR", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("VAULT_") || k.starts_with("BAO_") || k.starts_with("CERTPLANE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd.output().expect("run the certplane binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// `certplane <args>` against `bao` with its root token in `VAULT_*`.
pub fn certplane_root(bao: &OpenBao, args: &[&str]) -> Run {
    let addr = bao.addr();
    certplane(
        args,
        &[("VAULT_ADDR", &addr), ("VAULT_TOKEN", bao.token())],
        bao.dir(),
    )
}

/// Copies a directory tree (files and folders only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A self-signed CA made with rcgen: `(certificate PEM, PKCS#8 key PEM)`.
pub fn rcgen_ca(common_name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = ca_params(common_name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// CA parameters: CN, unconstrained CA, cert/CRL signing, ten years.
pub fn ca_params(common_name: &str) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    p
}

/// The base64 body lines of a PEM text (what must never be printed of a key).
pub fn pem_body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .map(str::to_string)
        .collect()
}

/// Enables AppRole on `approle/` and makes a role `certplane` whose tokens
/// may do anything; returns `(role_id, secret_id)`.
pub fn approle_for_certplane(bao: &OpenBao) -> (String, String) {
    let policy = bao.dir().join("certplane-policy.hcl");
    std::fs::write(
        &policy,
        "path \"*\" {\n  capabilities = [\"create\", \"read\", \"update\", \"patch\", \"delete\", \"list\", \"sudo\"]\n}\n",
    )
    .unwrap();
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

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
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

/// DER of the first certificate of a PEM text.
pub fn der(pem: &str) -> Vec<u8> {
    certplane::pki::x509::parse_pem(pem)
        .unwrap_or_else(|e| panic!("not a certificate ({e}): {pem}"))
        .der
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

/// The `-o json` plan, parsed.
#[track_caller]
pub fn json_plan(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("plan -o json is not JSON ({e})\n{}", run.both()))
}

/// `GET path` over plain HTTP/1.0 on 127.0.0.1:`port` (the health and
/// metrics endpoints of `certplane run`): `(status, body)`, `None` when
/// nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split(' ').nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Some((status, body.to_string()))
}

/// The `ttl` of the homelab role in `bao`, if the role exists.
pub fn homelab_role_ttl(bao: &OpenBao) -> Option<u64> {
    read(bao, "pki_int/roles/homelab-dot-local").and_then(|d| d["ttl"].as_u64())
}

/// Sends SIGTERM to `child` and waits up to `secs` for it to exit; its exit
/// code, or `Err` with how long it kept running.
pub fn terminate(child: &mut std::process::Child, secs: u64) -> Result<Option<i32>, String> {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    if !sent.is_ok_and(|s| s.success()) {
        return Err(format!("cannot send SIGTERM to {pid}"));
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Ok(s.code());
        }
        if Instant::now() > deadline {
            return Err(format!("still running {secs}s after SIGTERM"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback listener that is not Vault: it records every connection and
/// what was sent on it (a request carrying `X-Vault-Token` would show here).
pub struct Decoy {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Decoy {
    /// Listens on a free loopback port.
    pub fn start() -> Decoy {
        use std::io::Read;
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                        let mut buf = vec![0u8; 8192];
                        let n = stream.read(&mut buf).unwrap_or(0);
                        s.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Decoy {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What each connection sent (its first 8 KiB).
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Decoy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
