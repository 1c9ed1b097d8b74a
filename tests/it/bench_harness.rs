//! The pieces of `make bench` that can fail (the bench itself is not run
//! here, and no time is asserted): the scripted API server of
//! benches/scale answers discovery, GET, lists and server-side apply and
//! counts what it serves; the raw clients send exactly the requests they
//! are given, the API server's over certplane's bounded pool; and certplane's
//! cluster client asks discovery once per group/version even when many
//! objects are observed at once.

#[path = "../../benches/scale/kube_server.rs"]
#[allow(dead_code)]
pub(crate) mod kube_server;
#[path = "../../benches/scale/raw.rs"]
#[allow(dead_code)]
mod raw;

use std::time::Duration;

use certplane::cluster::{Cluster, Replies, pool};
use serde_json::{Value, json};

async fn start() -> String {
    start_with(Duration::ZERO).await
}

/// The scripted API server, answering each request `delay` after it came.
async fn start_with(delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(kube_server::serve_with(listener, delay));
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    raw::client(4).expect("client")
}

async fn send(c: &reqwest::Client, method: &str, url: String, body: Option<Value>) -> (u16, Value) {
    let mut req = c.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/apply-patch+yaml")
            .body(b.to_string());
    }
    let resp = tokio::time::timeout(Duration::from_secs(10), req.send())
        .await
        .expect("in time")
        .expect("reply");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn stats(c: &reqwest::Client, addr: &str) -> kube_server::Stats {
    let (status, v) = send(c, "GET", format!("{addr}/__bench/stats"), None).await;
    assert_eq!(status, 200);
    serde_json::from_value(v).expect("stats")
}

fn certificate(name: &str) -> Value {
    json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
           "metadata": {"name": name, "namespace": "bench", "labels": {"team": "a"}},
           "spec": {"secretName": format!("{name}-tls"), "dnsNames": ["a.example"],
                    "issuerRef": {"name": "ca", "kind": "Issuer"}}})
}

const CERTS: &str = "/apis/cert-manager.io/v1/namespaces/bench/certificates";

#[tokio::test]
async fn the_scripted_api_server_answers_applies_and_counts() {
    let addr = start().await;
    let c = client();
    let (status, discovery) =
        send(&c, "GET", format!("{addr}/apis/cert-manager.io/v1"), None).await;
    assert_eq!(status, 200);
    assert!(
        discovery["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "Certificate" && r["namespaced"] == true)
    );
    let one = format!("{addr}{CERTS}/web");
    assert_eq!(send(&c, "GET", one.clone(), None).await.0, 404);

    // A dry run answers the object as it would be stored, and stores nothing.
    let dry = format!("{one}?dryRun=All&fieldManager=certplane&force=true");
    let (status, reply) = send(&c, "PATCH", dry.clone(), Some(certificate("web"))).await;
    assert_eq!(status, 201);
    assert_eq!(reply["spec"], certificate("web")["spec"]);
    assert!(reply["metadata"]["uid"].is_string());
    assert_eq!(
        reply["metadata"]["managedFields"][0]["manager"],
        "certplane"
    );
    assert_eq!(send(&c, "GET", one.clone(), None).await.0, 404);

    // An apply stores it; a GET and a later dry run answer the same object.
    let apply = format!("{one}?fieldManager=certplane&force=true");
    let (status, stored) = send(&c, "PATCH", apply, Some(certificate("web"))).await;
    assert_eq!(status, 201);
    let (status, got) = send(&c, "GET", one.clone(), None).await;
    assert_eq!((status, &got), (200, &stored));
    let (status, again) = send(&c, "PATCH", dry, Some(certificate("web"))).await;
    assert_eq!((status, &again), (200, &stored));

    // Lists select by label.
    let (_, list) = send(
        &c,
        "GET",
        format!("{addr}{CERTS}?labelSelector=team%3Da"),
        None,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, list) = send(
        &c,
        "GET",
        format!("{addr}{CERTS}?labelSelector=team%3Db"),
        None,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);

    let s = stats(&c, &addr).await;
    assert_eq!(
        (
            s.requests,
            s.discovery,
            s.gets,
            s.lists,
            s.dry_runs,
            s.writes
        ),
        (9, 1, 3, 2, 2, 1),
        "{s:?}"
    );
    assert!(s.max_in_flight >= 1 && s.connections >= 1, "{s:?}");

    // The log holds the API requests in order, bodies included; a reset
    // empties it and the counters, and keeps the store.
    let resp = c.get(format!("{addr}/__bench/log")).send().await.unwrap();
    let log: Vec<kube_server::Recorded> = resp
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(log.len(), 9);
    assert_eq!(log[2].method, "PATCH");
    assert!(log[2].uri.contains("dryRun=All"));
    assert_eq!(
        serde_json::from_str::<Value>(&log[2].body).unwrap(),
        certificate("web")
    );
    assert_eq!(
        send(&c, "POST", format!("{addr}/__bench/reset"), None)
            .await
            .0,
        200
    );
    assert_eq!(stats(&c, &addr).await.requests, 0);
    assert_eq!(send(&c, "GET", one, None).await.0, 200);
}

#[tokio::test]
async fn the_server_counts_the_connections_open_at_once_since_the_last_reset() {
    let addr = start_with(Duration::from_millis(20)).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Three clients of one connection each, kept alive: the first opened
    // before the reset, the other two after it.
    let clients: Vec<reqwest::Client> = (0..3)
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap()
        })
        .collect();
    let one = format!("{addr}/api/v1/namespaces/bench");
    send(&clients[0], "GET", one.clone(), None).await;
    send(&clients[0], "POST", format!("{addr}/__bench/reset"), None).await;
    // Two requests at once on two new connections, while the first
    // client's connection is still open: it was opened before the reset.
    let (a, b) = tokio::join!(
        send(&clients[1], "GET", one.clone(), None),
        send(&clients[2], "GET", one.clone(), None)
    );
    assert_eq!((a.0, b.0), (404, 404));
    let s = stats(&clients[1], &addr).await;
    assert_eq!(s.max_open, 2, "{s:?}");
    // The stats request came on an open connection: none was accepted for it.
    assert_eq!(s.connections, 2, "{s:?}");
    // A connection closed and another opened: two accepted, one at once.
    send(&clients[0], "POST", format!("{addr}/__bench/reset"), None).await;
    drop(clients);
    for _ in 0..2 {
        let c = reqwest::Client::new();
        send(&c, "GET", one.clone(), None).await;
        drop(c);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s = stats(&client(), &addr).await;
    assert_eq!((s.connections, s.max_open), (3, 1), "{s:?}");
}

/// The server-side dry run of Certificate `c{i}`, as recorded.
fn dry_run(i: usize) -> kube_server::Recorded {
    kube_server::Recorded {
        method: "PATCH".into(),
        uri: format!("{CERTS}/c{i}?dryRun=All&fieldManager=certplane&force=true"),
        content_type: Some("application/apply-patch+yaml".into()),
        body: certificate(&format!("c{i}")).to_string(),
    }
}

/// The raw replay's kube client over certplane's pool, as `kube-raw` makes
/// it for the scripted server.
fn pooled(addr: &str) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new(addr.parse().expect("url"));
    pool::client(config, Duration::from_secs(10)).expect("client")
}

#[tokio::test]
async fn the_raw_clients_send_each_request_once_over_a_bounded_pool() {
    let addr = start_with(Duration::from_millis(2)).await;
    let c = client();
    let log: Vec<kube_server::Recorded> = (0..40).map(dry_run).collect();
    // More requests in flight than the pool has connections: the pool,
    // not the concurrency, bounds the connections.
    let done = raw::kube_requests_via(&pooled(&addr), &log, 16).await;
    assert_eq!(done.requests, 40);
    assert_eq!(done.by_status.get("2xx"), Some(&40), "{done:?}");
    let s = stats(&c, &addr).await;
    assert_eq!((s.requests, s.dry_runs), (40, 40), "{s:?}");
    assert!(s.max_in_flight <= pool::MAX_CONNECTIONS as u64, "{s:?}");
    // The raw client's connections, plus this test's own one.
    assert!(s.connections <= pool::MAX_CONNECTIONS as u64 + 1, "{s:?}");

    // The Vault reader: `read`/`list` lines, each sent once (this server
    // answers them 404; what counts is that each was sent and answered).
    let reads =
        raw::VaultRead::parse_lines("read sys/mounts\n\nlist pki/roles\nread pki/roles/a\n")
            .expect("parse");
    assert_eq!(reads.len(), 3);
    assert!(reads[1].list);
    let err = raw::VaultRead::parse_lines("read a\nwrite b\n").unwrap_err();
    assert!(err.starts_with("line 2:"), "{err}");
    let done = raw::vault_reads(&raw::client(2).unwrap(), &addr, "t", &reads, 2).await;
    assert_eq!(done.requests, 3);
    assert_eq!(done.by_status.get("4xx"), Some(&3), "{done:?}");
}

/// The raw replay against a real API server goes through a kube client
/// made from the kubeconfig (its TLS and credentials; here the scripted
/// server's): each request sent once, at most `concurrency` in flight, an
/// API error counted by its status.
#[tokio::test]
async fn the_raw_replay_through_a_kubeconfig_sends_each_request_once() {
    let addr = start_with(Duration::from_millis(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let path = crate::common::kube::loopback_kubeconfig(dir.path(), "bench", port);
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let kube = pool::client(config, Duration::from_secs(10)).expect("client");
    let mut log: Vec<kube_server::Recorded> = (0..30).map(dry_run).collect();
    log.push(kube_server::Recorded {
        method: "GET".into(),
        uri: format!("{CERTS}/missing"),
        content_type: None,
        body: String::new(),
    });
    let done = raw::kube_requests_via(&kube, &log, 3).await;
    assert_eq!(done.requests, 31);
    assert_eq!(done.by_status.get("2xx"), Some(&30), "{done:?}");
    assert_eq!(done.by_status.get("4xx"), Some(&1), "{done:?}");
    let s = stats(&client(), &addr).await;
    assert_eq!((s.requests, s.dry_runs, s.gets), (31, 30, 1), "{s:?}");
    assert!((2..=3).contains(&s.max_in_flight), "{s:?}");
}

#[tokio::test]
async fn many_objects_observed_at_once_ask_discovery_once() {
    let addr = start().await;
    let dir = tempfile::tempdir().unwrap();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let kubeconfig = crate::common::kube::loopback_kubeconfig(dir.path(), "bench", port);
    let cluster = Cluster::connect_kubeconfig(&kubeconfig, None)
        .await
        .expect("connect");
    let manifests: Vec<Value> = (0..16).map(|i| certificate(&format!("c{i}"))).collect();
    let observed =
        futures::future::join_all(manifests.iter().map(|m| cluster.observe_object(m))).await;
    for o in observed {
        let o = o.expect("observed");
        assert!(
            matches!(o.replies, Replies::Read { live: None, .. }),
            "{o:?}"
        );
    }
    let s = stats(&client(), &addr).await;
    assert_eq!(s.discovery, 1, "{s:?}");
    assert_eq!((s.gets, s.dry_runs), (16, 16), "{s:?}");
}

/// The cluster half of a plan at scale (issue 12): the objects are observed
/// in parallel, at most 8 requests in flight (and more than one: a server
/// that takes 10 ms per request sees several at once) over at most 8
/// connections of one pool, one discovery per group/version; the plan
/// comes out in the order of the manifests (Namespace first), the same
/// every time, with the object that differs as an update and the missing
/// ones as creates.
#[tokio::test]
async fn a_cluster_plan_is_parallel_bounded_over_one_pool_and_in_order() {
    use certplane::cluster::live::{LiveOptions, plan_live};
    use certplane::model::{Loaded, Meta, Origin};
    use certplane::plan::Action;

    const N: usize = 60;
    let addr = start_with(Duration::from_millis(10)).await;
    let c = client();
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}});
    let stored = |m: &Value| {
        let mut m = m.clone();
        m["metadata"]["labels"] =
            json!({"team": "a", certplane::cluster::REPOSITORY_LABEL: "bench"});
        m
    };
    // In the cluster already: the Namespace (certplane does not label
    // namespaces) and the first half of the Certificates, as certplane
    // applies them, one of them (c07) with another secret name.
    let apply = |path: String, body: Value| {
        send(
            &c,
            "PATCH",
            format!("{addr}{path}?fieldManager=certplane&force=true"),
            Some(body),
        )
    };
    assert_eq!(
        apply("/api/v1/namespaces/bench".into(), namespace.clone())
            .await
            .0,
        201
    );
    let certs: Vec<Value> = (0..N).map(|i| certificate(&format!("c{i:02}"))).collect();
    for (i, m) in certs.iter().enumerate().take(N / 2) {
        let mut body = stored(m);
        if i == 7 {
            body["spec"]["secretName"] = json!("elsewhere-tls");
        }
        let name = m["metadata"]["name"].as_str().unwrap();
        assert_eq!(apply(format!("{CERTS}/{name}"), body).await.0, 201);
    }
    let manifests: Vec<Loaded<Value>> = std::iter::once(namespace)
        .chain(certs)
        .map(|spec| Loaded {
            meta: Meta::default(),
            origin: Origin::default(),
            spec,
        })
        .collect();
    let options = LiveOptions {
        identity: "bench",
        prune: false,
        also_owned: &[],
    };

    let dir = tempfile::tempdir().unwrap();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let kubeconfig = crate::common::kube::loopback_kubeconfig(dir.path(), "bench", port);
    let mut plans = Vec::new();
    for _ in 0..2 {
        // The same client (`c`) resets and reads the counters over its one
        // kept-alive connection: what is counted is the cluster's.
        assert_eq!(
            send(&c, "POST", format!("{addr}/__bench/reset"), None)
                .await
                .0,
            200
        );
        let cluster = Cluster::connect_kubeconfig(&kubeconfig, None)
            .await
            .expect("connect");
        let planned = tokio::time::timeout(
            Duration::from_secs(60),
            plan_live(&cluster, &manifests, options),
        )
        .await
        .expect("in time")
        .expect("plan");
        let s = stats(&c, &addr).await;
        assert!(s.max_in_flight <= 8, "at most 8 requests in flight: {s:?}");
        assert!(s.max_in_flight > 1, "requests in parallel: {s:?}");
        assert!(s.connections <= 8, "at most 8 connections: {s:?}");
        assert_eq!(s.discovery, 2, "once per group/version: {s:?}");
        assert_eq!(s.writes, 0, "{s:?}");
        // The live half gets a GET and a dry run each; the rest (absent) a
        // GET and a dry run too: their namespace exists.
        assert_eq!(
            (s.gets, s.dry_runs),
            (N as u64 + 1 + 1, N as u64 + 1),
            "{s:?}"
        );
        plans.push(planned);
    }
    let lines = |p: &certplane::cluster::manifest::ClusterPlan| -> Vec<String> {
        p.changes
            .iter()
            .map(|c| format!("{:?} {}", c.action, c.addr))
            .collect()
    };
    assert_eq!(
        lines(&plans[0]),
        lines(&plans[1]),
        "the same plan every time"
    );
    let changes = &plans[0].changes;
    assert_eq!(changes.len(), N + 1);
    assert_eq!(changes[0].addr.to_string(), "core/Namespace/bench");
    assert_eq!(changes[0].action, Action::NoOp);
    for (i, c) in changes[1..].iter().enumerate() {
        assert_eq!(
            c.addr.to_string(),
            format!("cert-manager.io/Certificate/bench/c{i:02}"),
            "in the order of the manifests"
        );
        let want = match i {
            7 => Action::Update,
            i if i < N / 2 => Action::NoOp,
            _ => Action::Create,
        };
        assert_eq!(c.action, want, "{}", c.addr);
    }
    let c7 = &changes[8];
    assert_eq!(
        c7.before.as_ref().and_then(|b| b.get("spec.secretName")),
        Some(&json!("elsewhere-tls"))
    );
}

/// A repository of one Namespace `name` whose cluster is the kubeconfig's
/// context `bench` at the scripted server `addr`: (its scratch directory,
/// the kubeconfig, the repository).
fn one_namespace(
    addr: &str,
    name: &str,
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let kubeconfig = crate::common::kube::loopback_kubeconfig(dir.path(), "bench", port);
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    std::fs::write(
        repo.join("certplane.yaml"),
        format!(
            "apiVersion: certplane.dev/v1alpha1\nkind: Config\nmetadata: {{name: {name}}}\n\
             spec:\n  cluster:\n    context: bench\n"
        ),
    )
    .unwrap();
    std::fs::write(
        repo.join("namespace.yaml"),
        format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n"),
    )
    .unwrap();
    (dir, kubeconfig, repo)
}

/// `make bench` compares the cluster plan's requests with the same requests
/// sent raw by the plan's own measure of them: its debug line `planned
/// target="cluster" ... ms=`, from the target's first request to its plan,
/// without the repository read and the start before it. Against a server
/// that answers each request 40 ms late, the Namespace's discovery, GET and
/// dry run (one after the other) are in it, and it is less than the
/// process's whole run.
#[tokio::test]
async fn the_plan_logs_how_long_its_cluster_requests_took() {
    let delay = Duration::from_millis(40);
    let addr = start_with(delay).await;
    let (dir, kubeconfig, repo) = one_namespace(&addr, "timed");
    let home = dir.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        let mut cmd = crate::common::cli::command(&home);
        cmd.arg("plan")
            .arg(&repo)
            .env("KUBECONFIG", &kubeconfig)
            .env("CERTPLANE_LOG", "certplane::pipeline::plan=debug");
        crate::common::cli::Run::of(&mut cmd)
    })
    .await
    .expect("the run");
    run.expect(2);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("planned") && l.contains("target=\"cluster\""))
        .unwrap_or_else(|| panic!("no planned line for the cluster\n{}", run.both()));
    let ms: f64 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ms="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no ms= in {line:?}"));
    let s = stats(&client(), &addr).await;
    assert!(s.requests >= 3, "{s:?}");
    assert!(
        ms >= 3.0 * delay.as_secs_f64() * 1000.0,
        "three requests one after the other took at least 120 ms, not {ms}: {line}"
    );
    assert!(
        ms < run.elapsed.as_secs_f64() * 1000.0,
        "{ms} ms is less than the whole run, {:?}",
        run.elapsed
    );
}

/// A one-shot command runs on one thread: no tokio worker threads, to
/// which each reply would be read and then handed back (at 10,000 roles
/// that cost a third of the plan's CPU). Seen while the plan waits on a
/// server that answers each request 300 ms late.
#[tokio::test]
async fn a_one_shot_plan_has_no_worker_threads() {
    let addr = start_with(Duration::from_millis(300)).await;
    let (dir, kubeconfig, repo) = one_namespace(&addr, "threads");
    let mut child = crate::common::cli::command(dir.path())
        .arg("plan")
        .arg(&repo)
        .env("KUBECONFIG", &kubeconfig)
        .spawn()
        .expect("spawn certplane plan");
    let pid = child.id();
    let mut seen = Vec::new();
    let done = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        seen.extend(crate::common::cli::thread_names(pid));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done.code(), Some(2), "a plan with a create");
    assert!(!seen.is_empty(), "its threads were read");
    assert!(
        !seen.iter().any(|t| t == "tokio-rt-worker"),
        "{:?}",
        seen.iter().collect::<std::collections::BTreeSet<_>>()
    );
}
