//! The pieces of `make bench` that can fail (the bench itself is not run
//! here, and no time is asserted): the scripted API server of
//! benches/scale answers discovery, GET, lists and server-side apply and
//! counts what it serves; the raw clients send exactly the requests they
//! are given, over at most `concurrency` connections; and certplane's
//! cluster client asks discovery once per group/version even when many
//! objects are observed at once.

#[path = "../../benches/scale/kube_server.rs"]
#[allow(dead_code)]
pub(crate) mod kube_server;
#[path = "../../benches/scale/raw.rs"]
#[allow(dead_code)]
mod raw;

use std::time::Duration;

use certplane::cluster::Cluster;
use serde_json::{Value, json};

async fn start() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(kube_server::serve(listener));
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
async fn the_raw_clients_send_each_request_once_over_a_bounded_pool() {
    let addr = start().await;
    let c = client();
    let log: Vec<kube_server::Recorded> = (0..40)
        .map(|i| kube_server::Recorded {
            method: "PATCH".into(),
            uri: format!("{CERTS}/c{i}?dryRun=All&fieldManager=certplane&force=true"),
            content_type: Some("application/apply-patch+yaml".into()),
            body: certificate(&format!("c{i}")).to_string(),
        })
        .collect();
    let done = raw::kube_requests(&raw::client(3).unwrap(), &addr, &log, 3).await;
    assert_eq!(done.requests, 40);
    assert_eq!(done.by_status.get("2xx"), Some(&40), "{done:?}");
    let s = stats(&c, &addr).await;
    assert_eq!((s.requests, s.dry_runs), (40, 40), "{s:?}");
    assert!(s.max_in_flight <= 3, "{s:?}");
    // The raw client's connections, plus this test's own one.
    assert!(s.connections <= 3 + 1, "{s:?}");

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
        assert!(o.live.is_none());
    }
    let s = stats(&client(), &addr).await;
    assert_eq!(s.discovery, 1, "{s:?}");
    assert_eq!((s.gets, s.dry_runs), (16, 16), "{s:?}");
}
