//! `certplane run --leader-elect`, end to end: the binary follows a real bare
//! Git repository and converges a real OpenBao, and holds its Lease in a
//! loopback API server made here (GET, POST, PUT with resourceVersion and
//! 409 on a stale one, as a real API server does). Another replica is
//! played by the test: while it renews the Lease, certplane follows
//! (validates, is ready, applies nothing, `certplane_leader 0`); when it
//! stops, certplane takes over and applies; when it grabs the Lease back,
//! certplane stops applying (drift stays) until it leads again; on SIGTERM
//! it releases the Lease. Also: the Deployment passes `--leader-elect` with
//! the pod's name and namespace.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::git::GitRepo;
use common::kube::loopback_kubeconfig;
use common::{Daemon, OpenBao, homelab_role_ttl as role_ttl};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

const ROLE: &str = "pki_int/roles/homelab-dot-local";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/certplane-system/leases";
const OTHER: &str = "other-replica";

/// The Lease store of the loopback API server.
#[derive(Default)]
struct Store {
    lease: Option<Value>,
    rv: u64,
    /// `(method, body)` of every write.
    writes: Vec<(String, Value)>,
}

fn micro_now() -> String {
    Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

impl Store {
    fn store(&mut self, mut lease: Value) -> Value {
        self.rv += 1;
        lease["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        lease["metadata"]["uid"] = json!("6f1c8f0e-0000-4000-8000-00000000000a");
        self.lease = Some(lease.clone());
        lease
    }

    /// The other replica writes the Lease (a fresh renewal or a grab).
    fn other_renews(&mut self) {
        let transitions = match &self.lease {
            Some(l) if l["spec"]["holderIdentity"] == OTHER => {
                l["spec"]["leaseTransitions"].as_i64().unwrap_or(0)
            }
            Some(l) => l["spec"]["leaseTransitions"].as_i64().unwrap_or(0) + 1,
            None => 0,
        };
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "certplane-leader", "namespace": "certplane-system"},
            "spec": {"holderIdentity": OTHER, "leaseDurationSeconds": 2,
                     "acquireTime": micro_now(), "renewTime": micro_now(),
                     "leaseTransitions": transitions}
        });
        self.store(lease);
    }

    fn holder(&self) -> Option<String> {
        self.lease
            .as_ref()
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(String::from))
    }

    fn handle(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let status = |code: u16, reason: &str| {
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": reason, "reason": reason, "code": code})
        };
        let path = path.split('?').next().unwrap_or("");
        let item = format!("{LEASES}/certplane-leader");
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match (method, path) {
            ("GET", p) if p == item => match &self.lease {
                Some(l) => (200, l.clone()),
                None => (404, status(404, "NotFound")),
            },
            ("POST", LEASES) => {
                self.writes.push((method.into(), body.clone()));
                if self.lease.is_some() {
                    return (409, status(409, "AlreadyExists"));
                }
                (201, self.store(body))
            }
            ("PUT", p) if p == item => {
                self.writes.push((method.into(), body.clone()));
                let current = self
                    .lease
                    .as_ref()
                    .map(|l| &l["metadata"]["resourceVersion"]);
                if current != Some(&body["metadata"]["resourceVersion"]) {
                    return (409, status(409, "Conflict"));
                }
                (200, self.store(body))
            }
            _ => (404, status(404, "NotFound")),
        }
    }
}

/// Serves `store` on a loopback port (HTTP/1.1, keep-alive); the port.
fn serve(store: Arc<Mutex<Store>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let store = store.clone();
            std::thread::spawn(move || connection(conn, &store));
        }
    });
    port
}

fn connection(conn: TcpStream, store: &Mutex<Store>) {
    let mut out = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut len = 0;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let (code, reply) = store.lock().unwrap().handle(&method, &path, &body);
        let reply = reply.to_string();
        let head = format!(
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// `certplane run --leader-elect` following `repo` as pod
/// `certplane-system/certplane-test-pod`, its Lease in the API server on
/// `api_port`.
fn start(repo: &str, api_port: u16, bao: &OpenBao) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = loopback_kubeconfig(dir.path(), "fake", api_port);
    let kubeconfig = kubeconfig.to_str().unwrap();
    let addr = bao.addr();
    Daemon::run(
        dir,
        repo,
        &["--leader-elect"],
        &[
            ("KUBECONFIG", kubeconfig),
            ("POD_NAME", "certplane-test-pod"),
            ("POD_NAMESPACE", "certplane-system"),
            ("VAULT_ADDR", &addr),
            ("VAULT_TOKEN", bao.token()),
        ],
    )
}

/// `certplane_leader` from /metrics.
fn leader_gauge(l: &Daemon) -> Option<String> {
    let (_, body) = l.get("/metrics")?;
    body.lines()
        .find_map(|l| l.strip_prefix("certplane_leader "))
        .map(String::from)
}

#[test]
fn only_the_leader_applies_and_the_lease_is_released_on_sigterm() {
    let bao = OpenBao::start();
    let origin = GitRepo::homelab();
    origin.commit("homelab", None);
    let repo = origin.url();
    let store = Arc::new(Mutex::new(Store::default()));
    store.lock().unwrap().other_renews();
    let api_port = serve(store.clone());
    // The other replica renews every 300 ms while it lives.
    let other_alive = Arc::new(AtomicBool::new(true));
    {
        let (store, alive) = (store.clone(), other_alive.clone());
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(300));
                let mut s = store.lock().unwrap();
                if alive.load(Ordering::SeqCst) && s.holder().as_deref() == Some(OTHER) {
                    s.other_renews();
                }
            }
        });
    }

    let mut lp = start(&repo, api_port, &bao);
    // A follower: validates and is ready, but applies nothing.
    lp.wait(30, "following the other replica", |l| {
        l.logs().contains(&format!("following {OTHER}"))
    });
    lp.wait(10, "certplane_leader 0", |l| {
        leader_gauge(l).as_deref() == Some("0")
    });
    lp.wait(10, "/readyz 200 as a follower", |l| {
        l.get("/readyz").is_some_and(|r| r.0 == 200)
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(role_ttl(&bao), None, "a follower applied\n{}", lp.logs());
    assert!(
        store.lock().unwrap().writes.is_empty(),
        "a follower wrote the lease"
    );

    // The other replica dies: certplane takes over and applies.
    other_alive.store(false, Ordering::SeqCst);
    lp.wait(30, "applied as the leader", |_| {
        role_ttl(&bao) == Some(86400)
    });
    assert_eq!(leader_gauge(&lp).as_deref(), Some("1"));
    {
        let s = store.lock().unwrap();
        let holder = s.holder().unwrap_or_default();
        assert!(holder.starts_with("certplane-test-pod_"), "{holder}");
        let (method, body) = s.writes.first().expect("a takeover");
        assert_eq!(method, "PUT");
        assert_eq!(body["spec"]["leaseTransitions"], 1);
    }

    // The other replica grabs the lease back: certplane stops applying, so
    // drift made out of band stays.
    {
        let mut s = store.lock().unwrap();
        s.other_renews();
        other_alive.store(true, Ordering::SeqCst);
    }
    lp.wait(10, "certplane_leader 0 after losing the lease", |l| {
        leader_gauge(l).as_deref() == Some("0")
    });
    bao.bao_ok(&["write", ROLE, "ttl=1h", "max_ttl=2h"]);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        role_ttl(&bao),
        Some(3600),
        "a follower repaired drift\n{}",
        lp.logs()
    );

    // It leads again when the other dies, and repairs the drift.
    other_alive.store(false, Ordering::SeqCst);
    lp.wait(30, "drift repaired as the leader again", |_| {
        role_ttl(&bao) == Some(86400)
    });

    // SIGTERM: exit 0, the lease released (no holder).
    let code =
        common::terminate(&mut lp.child, 10).unwrap_or_else(|e| panic!("{e}\n{}", lp.logs()));
    assert_eq!(code, Some(0), "{}", lp.logs());
    let s = store.lock().unwrap();
    assert_eq!(s.holder(), None, "not released\n{}", lp.logs());
    let (method, body) = s.writes.last().unwrap();
    assert_eq!(method, "PUT");
    assert!(body["spec"].get("holderIdentity").is_none(), "{body}");
}

#[test]
fn the_deployment_elects_a_leader_named_after_the_pod() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/deployment.yaml");
    let d: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(args.contains(&"--leader-elect"), "{args:?}");
    let env = c["env"].as_array().unwrap();
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let e = env
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {env:?}"));
        assert_eq!(e["valueFrom"]["fieldRef"]["fieldPath"], field, "{name}");
    }
    // The Lease lives where the Role grants leases.
    assert_eq!(d["metadata"]["namespace"], "certplane-system");
}
