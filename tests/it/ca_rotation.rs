//! A CA rotation is an operation in stages, against a real OpenBao, while a
//! client keeps issuing (issue 10, "Done means"): the intermediate, then the
//! root, are rotated by editing the repository and applying again and
//! again; a client task signs a CSR through `pki_int/sign/web` every few
//! milliseconds and verifies each leaf against the trust bundle as it was
//! last published (the bundles certplane computes, read after each apply:
//! [`certplane::vault::bundle`]), and keeps verifying every earlier leaf
//! until it expires. Zero failed issuances, zero failed verifications; the
//! old issuers end retired, then deleted once expired. CAs live seconds
//! here so that the last stage is reached in the test. The intermediate
//! follows the root with a new key (`followParent: reissue`); the default,
//! cross-signing, is `ca_cross_sign`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

/// The repository: a root (60s) and an intermediate (20s) signed by it,
/// retired issuers deleted 1s after they expire.
const REPO: &str = r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec:
  maxLeaseTTL: 60s
  ca:
    root:
      commonName: Rotation Root
      issuerName: root
      keyType: ec
      keyBits: 256
      ttl: 60s
      rotation: {safetyBuffer: 1s}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki_int}
spec:
  maxLeaseTTL: 20s
  ca:
    intermediate:
      commonName: Rotation Intermediate
      issuerName: int
      keyType: ec
      keyBits: 256
      ttl: 20s
      signedBy: {mount: pki}
      rotation: {safetyBuffer: 1s, followParent: reissue}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {name: web}
spec:
  mount: pki_int
  allowedDomains: [example.com]
  allowSubdomains: true
  ttl: 2s
  maxTTL: 10s
  keyType: any
"#;

/// What the client trusts: the bundles last published.
#[derive(Default, Clone)]
struct Published {
    /// The root mount's bundle (the trust anchors).
    roots: String,
    /// The intermediate mount's bundle (what a client knows of the
    /// intermediates: leaves are verified through these, not through the
    /// chain Vault returns with them).
    intermediates: String,
}

/// What the client saw.
#[derive(Default)]
struct Seen {
    issued: usize,
    verified_later: usize,
    failures: Vec<String>,
}

/// Publishes the bundles certplane computes from the live mounts.
fn publish(addr: &str, published: &Mutex<Published>) {
    let (roots, intermediates) = block_on(async {
        let vault = root_vault(addr).await;
        (
            certplane::vault::bundle::live_bundle(&vault, "pki")
                .await
                .unwrap(),
            certplane::vault::bundle::live_bundle(&vault, "pki_int")
                .await
                .unwrap(),
        )
    });
    *published.lock().unwrap() = Published {
        roots,
        intermediates,
    };
}

fn now() -> i64 {
    certplane::vault::observe::unix_now()
}

/// The client: signs a CSR through the role, verifies the leaf against the
/// published bundles, and verifies every earlier leaf again until it
/// expires.
async fn client(
    addr: String,
    published: Arc<Mutex<Published>>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) {
    let vault = root_vault(&addr).await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["svc.example.com".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "svc.example.com");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let mut live: Vec<(Vec<u8>, i64)> = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let reply = vault
            .write(
                "pki_int/sign/web",
                &json!({"csr": csr, "common_name": "svc.example.com", "ttl": "2s"}),
            )
            .await;
        let p = published.lock().unwrap().clone();
        let t = now();
        check(reply, &p, t, n, &mut live, &mut seen.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks one issuance and every earlier leaf still valid at `t`.
fn check(
    reply: Result<Option<Value>, certplane::vault::VaultError>,
    p: &Published,
    t: i64,
    n: u64,
    live: &mut Vec<(Vec<u8>, i64)>,
    s: &mut Seen,
) {
    {
        match reply {
            Ok(Some(data)) => {
                s.issued += 1;
                let pem = data["certificate"].as_str().unwrap_or_default();
                let leaf = der(pem);
                if let Err(e) = verify_leaf(&leaf, &p.intermediates, &p.roots, t) {
                    s.failures.push(format!("new leaf #{n}: {e}"));
                }
                let info = certplane::pki::x509::parse_der(&leaf).unwrap();
                live.push((leaf, info.not_after));
            }
            Ok(None) => s.failures.push(format!("issuance #{n}: no reply data")),
            Err(e) => s.failures.push(format!("issuance #{n}: {e}")),
        }
        // Earlier leaves verify until they expire (a margin for the
        // second the clock may turn between the two reads).
        live.retain(|(_, not_after)| *not_after > t + 1);
        for (leaf, _) in live.iter() {
            match verify_leaf(leaf, &p.intermediates, &p.roots, t) {
                Ok(()) => s.verified_later += 1,
                Err(e) => s.failures.push(format!("earlier leaf at #{n}: {e}")),
            }
        }
    }
}

/// Every issuer of `mount` with a key: `(id, data)`.
fn keyed_issuers(bao: &OpenBao, mount: &str) -> Vec<(String, Value)> {
    list(bao, &format!("{mount}/issuers"))
        .into_iter()
        .filter_map(|id| read(bao, &format!("{mount}/issuer/{id}")).map(|d| (id, d)))
        .filter(|(_, d)| d["key_id"].as_str().is_some_and(|k| !k.is_empty()))
        .collect()
}

fn usage(d: &Value) -> Vec<String> {
    let mut u: Vec<String> = match &d["usage"] {
        Value::String(s) => s.split(',').map(str::to_string).collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => vec![],
    };
    u.sort();
    u
}

fn not_after(d: &Value) -> i64 {
    certplane::pki::x509::parse_pem(d["certificate"].as_str().unwrap())
        .unwrap()
        .not_after
}

/// The reasons of the JSON plan's changes for `addr` prefix, and the plan's
/// exit code.
fn reasons(addr: &str, bao: &OpenBao, dir: &str) -> (i32, Vec<(String, String, String)>) {
    let run = certplane_as(addr, bao.token(), bao.dir(), &["plan", "-o", "json", dir]);
    let plan = json_plan(&run);
    let out = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == json!("issuer"))
        .map(|c| {
            (
                c["address"].as_str().unwrap_or_default().to_string(),
                c["action"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (run.code, out)
}

/// The change of `addr`: `(action, reason)`.
#[track_caller]
fn find<'a>(changes: &'a [(String, String, String)], addr: &str) -> (&'a str, &'a str) {
    changes
        .iter()
        .find(|c| c.0 == addr)
        .map(|c| (c.1.as_str(), c.2.as_str()))
        .unwrap_or_else(|| panic!("no change for {addr}: {changes:#?}"))
}

fn sleep_until(unix: i64) {
    while now() < unix {
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_intermediate_then_the_root_rotate_in_stages_while_a_client_issues() {
    let bao = OpenBao::start();
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().to_str().unwrap();
    write(repo.path(), "pki.yaml", REPO);
    let addr = bao.addr();
    let apply = |what: &str| {
        let run = certplane_as(
            &addr,
            bao.token(),
            bao.dir(),
            &["apply", "--auto-approve", dir],
        );
        assert_eq!(run.code, 0, "{what}: {}", run.both());
        run
    };
    let plan = |dir: &str| reasons(&addr, &bao, dir);

    apply("the first apply");
    let published = Arc::new(Mutex::new(Published::default()));
    publish(&addr, &published);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let task = rt.spawn(client(
        addr.clone(),
        published.clone(),
        stop.clone(),
        seen.clone(),
    ));
    std::thread::sleep(Duration::from_secs(1));
    let int1 = default_issuer_id(&bao, "pki_int");

    // The intermediate: a new identity (and a longer life, which is not
    // one) is a rotation.
    edit(
        repo.path(),
        "pki.yaml",
        "commonName: Rotation Intermediate\n",
        "commonName: Rotation Intermediate G2\n",
    );
    edit(repo.path(), "pki.yaml", "ttl: 20s", "ttl: 40s");
    edit(repo.path(), "pki.yaml", "TTL: 20s", "TTL: 40s");
    let (code, changes) = plan(dir);
    assert_eq!(code, 2);
    let (action, reason) = find(&changes, "vault:pki_int/issuer/int");
    assert_eq!(action, "replace");
    assert!(
        reason.starts_with("rotation 1/3: commonName") && reason.contains("stays the default"),
        "{reason}"
    );
    apply("rotation 1/3 of the intermediate");
    // Stage 1: the new issuer beside the old one, which stays the default.
    let issuers = keyed_issuers(&bao, "pki_int");
    assert_eq!(issuers.len(), 2, "{issuers:?}");
    assert_eq!(default_issuer_id(&bao, "pki_int"), int1);
    let int2 = issuers
        .iter()
        .find(|(id, _)| *id != int1)
        .map(|(id, _)| id.clone())
        .unwrap();
    publish(&addr, &published);
    std::thread::sleep(Duration::from_millis(500));

    let (code, changes) = plan(dir);
    assert_eq!(code, 2);
    let (action, reason) = find(&changes, "vault:pki_int/issuer/int");
    assert_eq!(action, "update");
    assert!(
        reason.starts_with(&format!("rotation 2/3: make the new issuer {int2}"))
            && reason.contains(&format!("retire {int1}")),
        "{reason}"
    );
    apply("rotation 2/3 of the intermediate");
    let old = read(&bao, &format!("pki_int/issuer/{int1}")).unwrap();
    assert_eq!(default_issuer_id(&bao, "pki_int"), int2);
    assert_eq!(
        read(&bao, "pki_int/issuer/int").unwrap()["issuer_id"],
        json!(int2)
    );
    assert_eq!(usage(&old), ["crl-signing", "read-only"], "{old}");
    assert_eq!(
        old["issuer_name"],
        json!(format!("int-{}", &int1[..8])),
        "{old}"
    );
    std::thread::sleep(Duration::from_millis(500));
    publish(&addr, &published);

    // Stage 3 waits for the old one's notAfter plus the buffer.
    let (code, changes) = plan(dir);
    assert_eq!(code, 0, "{changes:#?}");
    let retired = format!("vault:pki_int/issuer/int-{}", &int1[..8]);
    let (action, reason) = find(&changes, &retired);
    assert_eq!(action, "no_op");
    assert!(reason.starts_with("rotation 3/3 waits"), "{reason}");
    sleep_until(not_after(&old) + 2);
    let (code, changes) = plan(dir);
    assert_eq!(code, 2);
    let (action, reason) = find(&changes, &retired);
    assert_eq!(action, "delete");
    assert!(reason.starts_with("rotation 3/3"), "{reason}");
    apply("rotation 3/3 of the intermediate");
    assert!(read(&bao, &format!("pki_int/issuer/{int1}")).is_none());
    publish(&addr, &published);
    assert_eq!(plan(dir).0, 0);

    // The root: a new identity, and longer lives for both.
    let root1 = default_issuer_id(&bao, "pki");
    edit(
        repo.path(),
        "pki.yaml",
        "commonName: Rotation Root\n",
        "commonName: Rotation Root G2\n",
    );
    edit(repo.path(), "pki.yaml", "ttl: 60s", "ttl: 600s");
    edit(repo.path(), "pki.yaml", "TTL: 60s", "TTL: 600s");
    edit(repo.path(), "pki.yaml", "ttl: 40s", "ttl: 300s");
    edit(repo.path(), "pki.yaml", "TTL: 40s", "TTL: 300s");
    let (code, changes) = plan(dir);
    assert_eq!(code, 2);
    let (action, reason) = find(&changes, "vault:pki/issuer/root");
    assert_eq!((action, &reason[..13]), ("replace", "rotation 1/3:"));
    // The child waits until its parent's new issuer is the default.
    let (action, reason) = find(&changes, "vault:pki_int/issuer/int");
    assert_eq!(action, "no_op");
    assert!(
        reason.starts_with("rotation 1/3 waits for its parent pki"),
        "{reason}"
    );
    apply("rotation 1/3 of the root");
    assert_eq!(default_issuer_id(&bao, "pki"), root1);
    publish(&addr, &published);
    std::thread::sleep(Duration::from_millis(500));

    // The root switches; its old issuer is not retired while the
    // intermediate chains to it; the intermediate is signed by the new
    // root in the same apply.
    let (code, changes) = plan(dir);
    assert_eq!(code, 2);
    let (action, reason) = find(&changes, "vault:pki/issuer/root");
    assert_eq!(action, "update");
    assert!(
        reason.starts_with("rotation 2/3") && reason.contains("is retired once pki_int"),
        "{reason}"
    );
    let (action, reason) = find(&changes, "vault:pki_int/issuer/int");
    assert_eq!(action, "replace", "{reason}");
    apply("rotation 2/3 of the root, 1/3 of the intermediate");
    let root2 = default_issuer_id(&bao, "pki");
    assert_ne!(root2, root1);
    let old_root = read(&bao, &format!("pki/issuer/{root1}")).unwrap();
    assert!(
        usage(&old_root).contains(&"issuing-certificates".to_string()),
        "{old_root}"
    );
    publish(&addr, &published);
    std::thread::sleep(Duration::from_millis(500));

    // The intermediate switches to its twin signed by the new root and
    // retires the old one; then the old root is retired.
    let (_, changes) = plan(dir);
    let (action, reason) = find(&changes, "vault:pki_int/issuer/int");
    assert_eq!(action, "update", "{reason}");
    apply("rotation 2/3 of the intermediate");
    publish(&addr, &published);
    let int3 = default_issuer_id(&bao, "pki_int");
    let int3_pem = read(&bao, &format!("pki_int/issuer/{int3}")).unwrap()["certificate"]
        .as_str()
        .unwrap()
        .to_string();
    let root2_pem = read(&bao, &format!("pki/issuer/{root2}")).unwrap()["certificate"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(certplane::pki::x509::is_signed_by(
        &der(&int3_pem),
        &der(&root2_pem)
    ));
    let (code, changes) = plan(dir);
    assert_eq!(code, 2, "{changes:#?}");
    let old_root_addr = format!("vault:pki/issuer/root-{}", &root1[..8]);
    let (action, reason) = find(&changes, &old_root_addr);
    assert_eq!(action, "update");
    assert!(
        reason.starts_with("rotation 2/3: retire the superseded issuer"),
        "{reason}"
    );
    apply("retiring the old root");
    let old_root = read(&bao, &format!("pki/issuer/{root1}")).unwrap();
    assert_eq!(usage(&old_root), ["crl-signing", "read-only"]);
    publish(&addr, &published);

    // Both old issuers are deleted once expired (the intermediate made by
    // the first rotation, then the first root).
    sleep_until(not_after(&old_root) + 2);
    let (code, changes) = plan(dir);
    assert_eq!(code, 2);
    assert_eq!(find(&changes, &old_root_addr).0, "delete");
    apply("rotation 3/3 of both");
    assert!(read(&bao, &format!("pki/issuer/{root1}")).is_none());
    assert!(read(&bao, &format!("pki_int/issuer/{int2}")).is_none());
    assert_eq!(keyed_issuers(&bao, "pki").len(), 1);
    assert_eq!(keyed_issuers(&bao, "pki_int").len(), 1);
    publish(&addr, &published);
    std::thread::sleep(Duration::from_millis(500));
    let (code, changes) = plan(dir);
    assert_eq!(code, 0, "{changes:#?}");

    stop.store(true, Ordering::SeqCst);
    rt.block_on(task).unwrap();
    let s = seen.lock().unwrap();
    assert!(s.issued > 50, "the client issued {} leaves", s.issued);
    assert!(s.verified_later > 50, "{}", s.verified_later);
    assert!(
        s.failures.is_empty(),
        "{} failures: {:#?}",
        s.failures.len(),
        s.failures
    );
    let _ = Path::new(dir);
}

/// The repository of the crash test: an intermediate with a long life, so
/// that only the stages under test happen.
fn crash_repo(int_cn: &str) -> String {
    REPO.replace("60s", "8760h")
        .replace("20s", "720h")
        .replace("Rotation Intermediate", int_cn)
}

#[test]
fn a_rotation_cut_at_every_request_resumes_and_converges() {
    use crate::common::proxy::{Fault, FaultKind, FaultProxy};
    let bao = OpenBao::start();
    let proxy = FaultProxy::start(&bao.addr());
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().to_str().unwrap();
    write(repo.path(), "pki.yaml", &crash_repo("Crash Intermediate"));
    let addr = proxy.addr();
    let apply = || {
        certplane_as(
            &addr,
            bao.token(),
            bao.dir(),
            &["apply", "--auto-approve", dir],
        )
    };
    apply().expect(0);
    let old = default_issuer_id(&bao, "pki_int");
    write(
        repo.path(),
        "pki.yaml",
        &crash_repo("Crash Intermediate G2"),
    );

    // Stage 1, cut after each request that makes something: the reply is
    // lost after Vault did the work (what a crash looks like).
    for (method, path) in [
        ("POST", "pki_int/issuers/generate/intermediate/internal"),
        ("POST", "pki/issuer/root/sign-intermediate"),
        ("POST", "pki_int/intermediate/set-signed"),
    ] {
        proxy.fault(Fault {
            method: method.into(),
            path: path.into(),
            kind: FaultKind::DropReply,
            times: 1,
        });
        let run = apply();
        assert!(run.code == 1, "{path}: {}", run.both());
        assert_eq!(default_issuer_id(&bao, "pki_int"), old, "{path}");
    }
    // set-signed made the new issuer: stage 1 is done, stage 2 is next.
    let plan = certplane_as(&addr, bao.token(), bao.dir(), &["plan", dir]);
    assert_eq!(plan.code, 2, "{}", plan.both());
    assert!(plan.stdout.contains("rotation 2/3"), "{}", plan.both());
    let issuers = keyed_issuers(&bao, "pki_int");
    assert_eq!(issuers.len(), 2, "one new issuer, no more: {issuers:?}");
    let new = issuers
        .iter()
        .map(|(id, _)| id.clone())
        .find(|id| *id != old)
        .unwrap();

    // Stage 2, cut at each of its writes: renaming the old issuer, naming
    // the new one, switching the default, retiring the old one.
    for (method, path) in [
        ("PATCH", format!("pki_int/issuer/{old}")),
        ("PATCH", format!("pki_int/issuer/{new}")),
        ("POST", "pki_int/config/issuers".to_string()),
        ("PATCH", format!("pki_int/issuer/{old}")),
    ] {
        let before = proxy.faulted().len();
        proxy.fault(Fault {
            method: method.into(),
            path: path.clone(),
            kind: FaultKind::DropReply,
            times: 1,
        });
        let run = apply();
        assert!(run.code <= 1, "{path}: {}", run.both());
        assert_eq!(proxy.faulted().len(), before + 1, "{path} was not cut");
    }
    // However it was cut, applying again converges: the new issuer is the
    // named default, the old one retired under its superseded name, no
    // pending key, and the plan is clean (stage 3 waits).
    apply().expect(0);
    let plan = certplane_as(&addr, bao.token(), bao.dir(), &["plan", dir]);
    assert_eq!(plan.code, 0, "{}", plan.both());
    assert!(
        plan.stdout.contains("rotation 3/3 waits"),
        "{}",
        plan.both()
    );
    assert_eq!(default_issuer_id(&bao, "pki_int"), new);
    let named = read(&bao, "pki_int/issuer/int").unwrap();
    assert_eq!(named["issuer_id"], json!(new));
    let retired = read(&bao, &format!("pki_int/issuer/{old}")).unwrap();
    assert_eq!(usage(&retired), ["crl-signing", "read-only"]);
    assert_eq!(retired["issuer_name"], json!(format!("int-{}", &old[..8])));
    let (_, keys) = block_on(bao.http("LIST", "pki_int/keys", None));
    let names: Vec<&str> = keys["data"]["key_info"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|k| k["key_name"].as_str())
        .filter(|n| !n.is_empty())
        .collect();
    assert!(names.is_empty(), "no pending key is left: {names:?}");
    assert_eq!(keyed_issuers(&bao, "pki_int").len(), 2);
}
