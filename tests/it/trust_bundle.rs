//! `PkiMount.spec.trustBundle` (issue 10, "Trust distribution"), against a
//! real OpenBao: the mount's CA bundle is published into a ConfigMap on a
//! loopback API server (the in-memory one of `make bench`, which stores what
//! is applied) and into a rendered trust-manager `Bundle` (`--render`). The
//! bundle holds the live issuers after the Vault half of each apply:
//! rotation 1/3 makes it hold old and new; an apply with nothing to do
//! writes nothing; stage 2 waits while the published bundle lacks the new
//! issuer; bad declarations are refused offline with file:line and a hint.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::bench_harness::kube_server;
use crate::common::{self, OpenBao, Run};
use certplane::cluster::trust::fingerprints;

const ROOT: &str = r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec:
  maxLeaseTTL: 8760h
  ca:
    root:
      commonName: Trust Root
      issuerName: root
      keyType: ec
      keyBits: 256
      ttl: 8760h
  trustBundle:
    configMap: {namespace: sandbox, name: pki-ca}
"#;

const CONFIG_MAP: &str = "/api/v1/namespaces/sandbox/configmaps/pki-ca";

/// Starts the in-memory API server on a thread of its own; its port.
fn start_kube() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            kube_server::serve(l).await;
        });
    });
    port
}

/// `certplane <args>` against `bao` and the cluster of `kubeconfig`.
fn run(bao: &OpenBao, home: &Path, kubeconfig: &Path, args: &[&str]) -> Run {
    let mut cmd = common::command(home);
    cmd.args(args)
        .env("VAULT_ADDR", bao.addr())
        .env("VAULT_TOKEN", bao.token())
        .env("KUBECONFIG", kubeconfig);
    Run::of(&mut cmd)
}

/// An HTTP/1.0 request with a JSON body to the API server.
fn http_send(port: u16, method: &str, path: &str, body: &Value) -> u16 {
    use std::io::{Read, Write};
    let text = body.to_string();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The stored object at `path`, if any.
fn stored(port: u16, path: &str) -> Option<Value> {
    let (status, body) = common::http_get(port, path)?;
    (status == 200).then(|| serde_json::from_str(&body).expect("JSON"))
}

/// How many writes the API server has served.
fn writes(port: u16) -> u64 {
    let (_, body) = common::http_get(port, "/__bench/stats").expect("stats");
    serde_json::from_str::<Value>(&body).expect("stats JSON")["writes"]
        .as_u64()
        .unwrap()
}

/// The SHA-256 of each certificate the ConfigMap holds.
fn published(port: u16) -> BTreeSet<String> {
    let cm = stored(port, CONFIG_MAP).expect("the ConfigMap exists");
    fingerprints(cm["data"]["ca.crt"].as_str().expect("data[ca.crt]"))
}

/// The SHA-256 of the certificate of each issuer of `mount`, by id.
fn issuer_shas(bao: &OpenBao, mount: &str) -> Vec<(String, String)> {
    common::list(bao, &format!("{mount}/issuers"))
        .into_iter()
        .map(|id| {
            let pem = common::read(bao, &format!("{mount}/issuer/{id}")).unwrap()["certificate"]
                .as_str()
                .unwrap()
                .to_string();
            let sha = fingerprints(&pem).into_iter().next().unwrap();
            (id, sha)
        })
        .collect()
}

fn sha_of(bao: &OpenBao, mount: &str, id: &str) -> String {
    issuer_shas(bao, mount)
        .into_iter()
        .find(|(i, _)| i == id)
        .unwrap()
        .1
}

#[test]
fn a_config_map_bundle_follows_the_live_issuers_and_gates_stage_2() {
    let bao = OpenBao::start();
    let port = start_kube();
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = common::kube::loopback_kubeconfig(tmp.path(), "loop", port);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let repo = tmp.path().join("repo");
    common::write(&repo, "pki.yaml", ROOT);
    let dir = repo.to_str().unwrap();

    // The plan shows the ConfigMap with the CA this apply makes.
    let p = run(&bao, &home, &kubeconfig, &["plan", dir]);
    p.expect(2);
    assert!(
        p.stdout
            .contains("+ core/ConfigMap/sandbox/pki-ca (create)"),
        "{}",
        p.both()
    );
    assert!(
        p.stdout
            .contains("(known after apply) the CA this apply makes"),
        "{}",
        p.both()
    );

    run(&bao, &home, &kubeconfig, &["apply", "--auto-approve", dir]).expect(0);
    let root = common::default_issuer_id(&bao, "pki");
    let first = sha_of(&bao, "pki", &root);
    assert_eq!(published(port), BTreeSet::from([first.clone()]));
    let cm = stored(port, CONFIG_MAP).unwrap();
    assert_eq!(
        cm["metadata"]["annotations"]["certplane.dev/trust-bundle-of"],
        "pki"
    );
    assert!(!cm.to_string().contains("PRIVATE KEY"));

    // Converged: no change, and an apply writes nothing.
    run(&bao, &home, &kubeconfig, &["plan", dir]).expect(0);
    let before = writes(port);
    run(&bao, &home, &kubeconfig, &["apply", "--auto-approve", dir]).expect(0);
    assert_eq!(writes(port), before, "an apply with nothing to do wrote");

    // Rotation 1/3: the plan says the bundle gains the new issuer; after
    // the apply it holds old and new.
    common::edit(&repo, "pki.yaml", "Trust Root", "Trust Root 2");
    let p = run(&bao, &home, &kubeconfig, &["plan", dir]);
    p.expect(2);
    assert!(p.stdout.contains("rotation 1/3"), "{}", p.both());
    assert!(
        p.stdout.contains(&format!(
            "(known after apply) the new issuer rotation 1/3 makes beside {root}"
        )),
        "{}",
        p.both()
    );
    assert!(
        p.stdout
            .contains("~ core/ConfigMap/sandbox/pki-ca (update)"),
        "{}",
        p.both()
    );
    run(&bao, &home, &kubeconfig, &["apply", "--auto-approve", dir]).expect(0);
    let all = issuer_shas(&bao, "pki");
    assert_eq!(all.len(), 2, "{all:?}");
    let new = all.iter().find(|(id, _)| *id != root).unwrap().clone();
    assert_eq!(
        published(port),
        BTreeSet::from([first.clone(), new.1.clone()])
    );
    assert_eq!(common::default_issuer_id(&bao, "pki"), root);

    // The published bundle loses the new issuer (restored from a backup,
    // edited by hand): stage 2 waits for it, and the apply writes it back.
    let mut cm = stored(port, CONFIG_MAP).unwrap();
    cm["data"]["ca.crt"] = json!(
        common::read(&bao, &format!("pki/issuer/{root}")).unwrap()["certificate"]
            .as_str()
            .unwrap()
    );
    assert_eq!(http_send(port, "PUT", CONFIG_MAP, &cm), 200);
    let p = run(&bao, &home, &kubeconfig, &["plan", dir]);
    p.expect(2);
    assert!(
        p.stdout.contains(
            "rotation 2/3 (make it the default) waits until the trust bundle \
             core/ConfigMap/sandbox/pki-ca holds it"
        ),
        "{}",
        p.both()
    );
    assert!(
        p.stdout.contains(&format!("gains issuer {}", new.0)),
        "{}",
        p.both()
    );
    let j = run(&bao, &home, &kubeconfig, &["plan", "-o", "json", dir]);
    assert!(
        j.stdout.contains("\"stage\":\"published\"")
            || j.stdout.contains("\"stage\": \"published\""),
        "{}",
        j.both()
    );
    run(&bao, &home, &kubeconfig, &["apply", "--auto-approve", dir]).expect(0);
    assert_eq!(
        common::default_issuer_id(&bao, "pki"),
        root,
        "stage 2 did not wait"
    );
    assert_eq!(
        published(port),
        BTreeSet::from([first.clone(), new.1.clone()])
    );

    // Now it holds the new issuer: stage 2 makes it the default; the old
    // one stays in the bundle (retired, its leaves valid until it expires).
    let p = run(&bao, &home, &kubeconfig, &["plan", dir]);
    assert!(
        p.stdout.contains("rotation 2/3: make the new issuer"),
        "{}",
        p.both()
    );
    run(&bao, &home, &kubeconfig, &["apply", "--auto-approve", dir]).expect(0);
    assert_eq!(common::default_issuer_id(&bao, "pki"), new.0);
    assert_eq!(published(port), BTreeSet::from([first, new.1]));
    let before = writes(port);
    run(&bao, &home, &kubeconfig, &["plan", dir]).expect(0);
    assert_eq!(writes(port), before);
}

#[test]
fn a_trust_manager_bundle_is_rendered_with_the_live_issuers() {
    let bao = OpenBao::start();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let rendered = tmp.path().join("rendered");
    common::write(
        &repo,
        "pki.yaml",
        &ROOT.replace(
            "    configMap: {namespace: sandbox, name: pki-ca}\n",
            "    bundle: {name: homelab-ca, key: root.pem, namespaceSelector: {matchLabels: {trust: \"yes\"}}}\n",
        ),
    );
    let dir = repo.to_str().unwrap();
    let out = rendered.to_str().unwrap();
    let file = rendered.join("_cluster/bundle.trust.cert-manager.io-homelab-ca.yaml");
    let certplane = |args: &[&str]| {
        let mut a = vec![args[0], "--render", out];
        a.extend_from_slice(&args[1..]);
        common::certplane_root(&bao, &a)
    };

    let p = certplane(&["plan", dir]);
    p.expect(2);
    assert!(
        p.stdout
            .contains("+ trust.cert-manager.io/Bundle/homelab-ca (create)"),
        "{}",
        p.both()
    );
    certplane(&["apply", "--auto-approve", dir]).expect(0);
    let read = || -> Value {
        serde_saphyr::from_str(&std::fs::read_to_string(&file).expect("the rendered Bundle"))
            .expect("YAML")
    };
    let b = read();
    assert_eq!(b["apiVersion"], "trust.cert-manager.io/v1alpha1");
    assert_eq!(b["spec"]["target"]["configMap"]["key"], "root.pem");
    assert_eq!(
        b["spec"]["target"]["namespaceSelector"]["matchLabels"]["trust"],
        "yes"
    );
    let root = common::default_issuer_id(&bao, "pki");
    let inline = |b: &Value| fingerprints(b["spec"]["sources"][0]["inLine"].as_str().unwrap());
    assert_eq!(inline(&b), BTreeSet::from([sha_of(&bao, "pki", &root)]));
    certplane(&["plan", dir]).expect(0);

    // Rotation 1/3: the rendered Bundle holds old and new.
    common::edit(&repo, "pki.yaml", "Trust Root", "Trust Root 2");
    certplane(&["apply", "--auto-approve", dir]).expect(0);
    let all: BTreeSet<String> = issuer_shas(&bao, "pki")
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(all.len(), 2);
    assert_eq!(inline(&read()), all);
    // The mount no longer publishes it: its rendered file goes.
    common::edit(
        &repo,
        "pki.yaml",
        "  trustBundle:\n    bundle: {name: homelab-ca, key: root.pem, namespaceSelector: {matchLabels: {trust: \"yes\"}}}\n",
        "",
    );
    certplane(&["apply", "--auto-approve", dir]).expect(0);
    assert!(!file.exists());
}

#[test]
fn a_bad_trust_bundle_is_refused_offline_with_where_and_how() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cases = [
        (
            ROOT.replace("name: pki-ca}", "name: Pki_CA}"),
            "trustBundle name \"Pki_CA\" is not a DNS subdomain",
            "pki.yaml:14",
        ),
        (
            ROOT.replace("name: pki-ca}", "name: pki-ca, key: \"ca/crt\"}"),
            "trustBundle key \"ca/crt\" is not a ConfigMap key",
            "pki.yaml:14",
        ),
        (
            ROOT.replace(
                "    configMap: {namespace: sandbox, name: pki-ca}\n",
                "    {}\n",
            ),
            "trustBundle names no object to publish to",
            "pki.yaml:13",
        ),
        (
            format!(
                "{ROOT}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: pki-ca, namespace: sandbox}}\ndata: {{a: b}}\n"
            ),
            "trustBundle ConfigMap sandbox/pki-ca is also declared at",
            "pki.yaml:14",
        ),
    ];
    for (i, (text, want, at)) in cases.iter().enumerate() {
        let repo = tmp.path().join(format!("case-{i}"));
        common::write(&repo, "pki.yaml", text);
        let r = common::certplane(&["validate", repo.to_str().unwrap()], &[], &home);
        r.expect(1);
        assert!(r.both().contains(want), "want {want:?}\n{}", r.both());
        assert!(r.both().contains(at), "want {at:?}\n{}", r.both());
        assert!(r.both().contains("hint"), "{}", r.both());
    }
    // A mount without a CA has nothing to publish.
    let no_ca = "apiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata: {name: pki}\nspec:\n  trustBundle:\n    configMap: {namespace: sandbox, name: pki-ca}\n";
    let repo = tmp.path().join("no-ca");
    common::write(&repo, "pki.yaml", no_ca);
    let r = common::certplane(&["validate", repo.to_str().unwrap()], &[], &home);
    r.expect(1);
    assert!(
        r.both()
            .contains("trustBundle without a CA (spec.ca) to publish"),
        "{}",
        r.both()
    );
    // Two mounts cannot publish into one object.
    let two = format!(
        "{ROOT}---\n{}",
        ROOT.replace("name: pki}", "name: pki2}")
            .replace("Trust Root", "Other Root")
    );
    let repo = tmp.path().join("two");
    common::write(&repo, "pki.yaml", &two);
    let r = common::certplane(&["validate", repo.to_str().unwrap()], &[], &home);
    r.expect(1);
    assert!(
        r.both()
            .contains("is also where mount pki publishes its bundle"),
        "{}",
        r.both()
    );
}

#[test]
fn a_bundle_on_a_cluster_without_trust_manager_is_an_error_at_plan_time() {
    let bao = OpenBao::start();
    let port = start_kube();
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = common::kube::loopback_kubeconfig(tmp.path(), "loop", port);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let repo = tmp.path().join("repo");
    common::write(
        &repo,
        "pki.yaml",
        &ROOT.replace(
            "    configMap: {namespace: sandbox, name: pki-ca}\n",
            "    bundle: {name: homelab-ca}\n",
        ),
    );
    let dir = repo.to_str().unwrap();
    let p = run(&bao, &home, &kubeconfig, &["plan", dir]);
    p.expect(1);
    assert!(
        p.stderr
            .contains("the cluster does not serve trust.cert-manager.io/v1alpha1 Bundle")
            && p.stderr.contains("install trust-manager"),
        "{}",
        p.both()
    );
    let a = run(&bao, &home, &kubeconfig, &["apply", "--auto-approve", dir]);
    a.expect(1);
    assert!(common::list(&bao, "pki/issuers").is_empty(), "{}", a.both());
}
