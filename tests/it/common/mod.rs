//! Helpers shared by the modules of the integration test binary, one
//! definition each:
//!
//! * servers: a real OpenBao dev server per test ([`openbao`], with the
//!   helpers that read what it holds), one with a mutual-TLS listener
//!   ([`tls`]), a fault-injecting proxy to put in front of it and a
//!   blackholed port ([`proxy`]), a listener that stands in for Vault and
//!   records what reaches it ([`decoy`]), a scripted Kubernetes API server
//!   behind a real `kube::Client` ([`fake`]) and OpenBao's TokenReview
//!   peer ([`tokenreview`]);
//! * the `certplane` binary as a child process ([`cli`]), and the filters
//!   of snapshots of what it prints ([`snapshot`]);
//! * builders: desired state and plan changes ([`state`]), CAs made with
//!   rcgen ([`pki`]), signed CI tokens ([`jwt`]), Git repositories
//!   ([`git`]) and kubeconfigs ([`kube`]);
//! * small file and port helpers (below).

pub mod cli;
pub mod decoy;
pub mod fake;
pub mod git;
pub mod jsonschema;
pub mod jwt;
pub mod kube;
pub mod openbao;
pub mod pki;
pub mod proxy;
pub mod snapshot;
pub mod state;
pub mod tls;
pub mod tokenreview;

pub use cli::*;
pub use decoy::Decoy;
pub use jwt::ci_jwt;
pub use openbao::*;
pub use pki::*;
pub use state::*;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

/// A loopback port nothing listens on (free a moment ago): for a server
/// to bind, or as the address of a Vault or a cluster that is not there.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port()
}

/// The path of `rel` in this repository (`examples/homelab`, `deploy`...).
pub fn in_repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The repository's `examples/homelab`.
pub fn homelab() -> PathBuf {
    in_repo("examples/homelab")
}

/// Writes `text` to `dir/rel`, making the directories on the way.
pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Replaces the first `from` in `dir/rel` by `to`; panics when the file
/// has no `from`.
#[track_caller]
pub fn edit(dir: &Path, rel: &str, from: &str, to: &str) {
    let p = dir.join(rel);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{rel} has no {from:?}");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
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

/// Standard base64 (what a Secret's `data` holds).
pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A Secret's `data` value decoded (empty when absent).
pub fn unb64(v: &Value) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap(),
    )
    .unwrap()
}

/// Runs `f` on a runtime of its own (for synchronous tests).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
