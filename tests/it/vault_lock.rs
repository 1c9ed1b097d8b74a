//! The apply lock, against a real OpenBao with a file audit device (issue 7:
//! two applies at once while a CA was pending made a second intermediate in
//! 17 of 20 rounds). Each test runs the `certplane` binary as a user would.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use common::proxy::{Fault, FaultKind, FaultProxy};
use serde_json::{Value, json};

fn write_repo(dir: &Path, bits: u32) {
    std::fs::write(
        dir.join("pki.yaml"),
        format!(
            r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {{name: pki}}
spec:
  maxLeaseTTL: 87600h
  ca:
    root: {{commonName: Lock Root, issuerName: root, keyType: ec, keyBits: 256, ttl: 87600h}}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {{name: pki_int}}
spec:
  maxLeaseTTL: 43800h
  ca:
    intermediate:
      commonName: Lock Intermediate
      issuerName: int
      keyType: ec
      keyBits: {bits}
      ttl: 43800h
      signedBy: {{mount: pki}}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {{name: web}}
spec:
  mount: pki_int
  allowedDomains: [example.com]
  allowSubdomains: true
  maxTTL: 24h
"#
        ),
    )
    .unwrap();
}

/// A root-policy token whose audit entries carry `token-<name>`.
fn named_token(bao: &OpenBao, name: &str) -> String {
    bao.bao_ok(&[
        "token",
        "create",
        "-policy=root",
        &format!("-display-name={name}"),
        "-field=token",
    ])
    .trim()
    .to_string()
}

/// The writes that succeeded for the token named `name` in the audit log
/// after its first `from` entries: `(operation, path)`.
fn successful_writes(bao: &OpenBao, name: &str, from: usize) -> Vec<(String, String)> {
    let who = format!("token-{name}");
    bao.audit_records()
        .into_iter()
        .skip(from)
        .filter(|r| r["type"] == "response" && r["auth"]["display_name"] == json!(who))
        .filter(|r| r["error"].as_str().is_none_or(str::is_empty))
        .filter(|r| {
            matches!(
                r["request"]["operation"].as_str(),
                Some("create" | "update" | "delete" | "patch")
            )
        })
        .map(|r| {
            (
                r["request"]["operation"].as_str().unwrap().to_string(),
                r["request"]["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Ids of the issuers of `mount` that hold a key.
fn keyed_issuers(bao: &OpenBao, mount: &str) -> Vec<String> {
    list(bao, &format!("{mount}/issuers"))
        .into_iter()
        .filter(|id| {
            read(bao, &format!("{mount}/issuer/{id}"))
                .is_some_and(|d| d["key_id"].as_str().is_some_and(|k| !k.is_empty()))
        })
        .collect()
}

/// The lock record as stored.
fn lock_record(bao: &OpenBao, mount: &str) -> Value {
    read(bao, &format!("{mount}/data/lock")).expect("a lock record")["data"].clone()
}

/// Writes a lock record by hand, as another certplane would have.
fn put_lock(bao: &OpenBao, host: &str, pid: u32, expires_in: i64, released: bool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (status, reply) = post(
        bao,
        "certplane/data/lock",
        &json!({"data": {
            "holder": {"host": host, "pid": pid, "repository": "/elsewhere/pki", "version": "9.9.9"},
            "since": now - 60,
            "expires": now + expires_in,
            "released": released,
        }}),
    );
    assert_eq!(status, 200, "{reply}");
}

#[test]
fn two_applies_at_once_make_exactly_one_intermediate_per_round() {
    let bao = OpenBao::start_with_audit();
    let repo = tempfile::tempdir().unwrap();
    let mut bits = 256;
    write_repo(repo.path(), bits);
    let dir = repo.path().to_str().unwrap();
    let addr = bao.addr();
    certplane_as(
        &addr,
        bao.token(),
        bao.dir(),
        &["apply", "--auto-approve", dir],
    )
    .expect(0);
    let names = ["applier-a", "applier-b"];
    let tokens = names.map(|n| named_token(&bao, n));
    let mut contended = 0;
    for round in 0..20 {
        // A pending CA: the intermediate deleted by hand, or its keyBits changed.
        let why = if round % 2 == 0 {
            let id = default_issuer_id(&bao, "pki_int");
            bao.bao_ok(&["delete", &format!("pki_int/issuer/{id}")]);
            "intermediate deleted"
        } else {
            bits = if bits == 256 { 384 } else { 256 };
            write_repo(repo.path(), bits);
            "keyBits changed"
        };
        let issuers = keyed_issuers(&bao, "pki_int").len();
        let signed = list(&bao, "pki/certs").len();
        let mark = bao.audit_records().len();
        let runs: Vec<Run> = std::thread::scope(|s| {
            let handles: Vec<_> = tokens
                .iter()
                .map(|t| {
                    let (addr, home) = (&addr, bao.dir());
                    s.spawn(move || certplane_as(addr, t, home, &["apply", "--auto-approve", dir]))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ctx = format!(
            "round {round} ({why})\n{}\n{}",
            runs[0].both(),
            runs[1].both()
        );
        assert_eq!(
            keyed_issuers(&bao, "pki_int").len(),
            issuers + 1,
            "exactly one new intermediate: {ctx}"
        );
        assert_eq!(
            list(&bao, "pki/certs").len(),
            signed + 1,
            "the root signed exactly once: {ctx}"
        );
        let made: Vec<usize> = (0..2)
            .filter(|&i| {
                successful_writes(&bao, names[i], mark)
                    .iter()
                    .any(|(_, p)| p.starts_with("pki_int/issuers/generate/intermediate/"))
            })
            .collect();
        assert_eq!(made.len(), 1, "one process made the CA: {ctx}");
        let (winner, loser) = (made[0], 1 - made[0]);
        runs[winner].expect(0);
        let loser_writes = successful_writes(&bao, names[loser], mark);
        match runs[loser].code {
            1 => {
                contended += 1;
                assert!(
                    runs[loser]
                        .stderr
                        .contains("error: another certplane is applying (holder "),
                    "{ctx}"
                );
                assert!(
                    runs[loser].stderr.contains(" pid "),
                    "the holder is named: {ctx}"
                );
                assert_eq!(loser_writes, vec![], "the loser writes nothing: {ctx}");
            }
            // A rotation is staged: a process that came after the winner
            // may take stage 2 (switch and retire), never make a CA.
            0 => assert!(
                loser_writes.iter().all(|(_, p)| p.starts_with("certplane/")
                    || (why == "keyBits changed"
                        && (p.starts_with("pki_int/issuer/")
                            || p.starts_with("pki_int/key/")
                            || p == "pki_int/config/issuers"))),
                "a process that came after the winner writes nothing but the lock and stage 2: {loser_writes:?}\n{ctx}"
            ),
            _ => panic!("unexpected exit: {ctx}"),
        }
        let mut plan = certplane_as(&addr, bao.token(), bao.dir(), &["plan", dir]);
        if why == "keyBits changed" && plan.code == 2 {
            // Stage 2 of the rotation, unless the loser took it.
            assert!(
                plan.stdout.contains("rotation 2/3"),
                "{}\n{ctx}",
                plan.both()
            );
            certplane_as(
                &addr,
                bao.token(),
                bao.dir(),
                &["apply", "--auto-approve", dir],
            )
            .expect(0);
            plan = certplane_as(&addr, bao.token(), bao.dir(), &["plan", dir]);
        }
        plan.expect(0);
        assert!(plan.stdout.contains("No changes"), "{}\n{ctx}", plan.both());
    }
    eprintln!("{contended} of 20 rounds had the loser stopped by the lock");
    assert!(
        contended > 0,
        "no round had both applies at the lock at once"
    );
    let record = lock_record(&bao, "certplane");
    assert_eq!(record["released"], json!(true), "{record}");
}

#[test]
fn a_held_lock_fails_fast_waits_with_a_timeout_and_force_unlock_removes_it() {
    let bao = OpenBao::start_with_audit();
    let repo = tempfile::tempdir().unwrap();
    write_repo(repo.path(), 256);
    let dir = repo.path().to_str().unwrap();
    let addr = bao.addr();
    let tester = named_token(&bao, "tester");
    let run = |args: &[&str]| certplane_as(&addr, &tester, bao.dir(), args);
    run(&["apply", "--auto-approve", dir]).expect(0);
    let record = lock_record(&bao, "certplane");
    assert_eq!(record["released"], json!(true), "{record}");
    assert!(
        record["holder"]["repository"]
            .as_str()
            .is_some_and(|r| r.ends_with(repo.path().file_name().unwrap().to_str().unwrap())),
        "{record}"
    );
    bao.bao_ok(&["delete", "pki_int/roles/web"]);

    // Held by a live certplane elsewhere: fail at once, write nothing.
    put_lock(&bao, "ci-runner-7", 4242, 300, false);
    let mark = bao.audit_records().len();
    let fast = run(&["apply", "--auto-approve", dir]);
    fast.expect(1);
    assert!(
        fast.stderr.contains(
            "error: another certplane is applying (holder ci-runner-7 pid 4242, repository /elsewhere/pki, certplane 9.9.9, since "
        ),
        "{}",
        fast.both()
    );
    assert!(
        fast.stderr.contains("certplane force-unlock"),
        "{}",
        fast.both()
    );
    assert_eq!(successful_writes(&bao, "tester", mark), vec![]);
    assert!(read(&bao, "pki_int/roles/web").is_none());

    // --lock-timeout waits, then gives up with the same message.
    let waited = run(&["apply", "--auto-approve", "--lock-timeout", "3s", dir]);
    waited.expect(1);
    assert!(
        waited.elapsed >= Duration::from_secs(3),
        "{:?}",
        waited.elapsed
    );
    assert!(
        waited.stderr.contains("another certplane is applying"),
        "{}",
        waited.both()
    );
    assert_eq!(successful_writes(&bao, "tester", mark), vec![]);

    // ... and goes on as soon as the holder releases it.
    let got = std::thread::scope(|s| {
        let h = s.spawn(|| run(&["apply", "--auto-approve", "--lock-timeout", "60s", dir]));
        std::thread::sleep(Duration::from_millis(1500));
        put_lock(&bao, "ci-runner-7", 4242, 300, true);
        h.join().unwrap()
    });
    got.expect(0);
    assert!(
        got.elapsed >= Duration::from_millis(1400),
        "{:?}",
        got.elapsed
    );
    assert!(read(&bao, "pki_int/roles/web").is_some(), "{}", got.both());

    // force-unlock names whom it removed; the next apply goes through.
    put_lock(&bao, "laptop", 99, 300, false);
    let unlock = run(&["force-unlock", dir]);
    unlock.expect(0);
    assert!(
        unlock.stdout.contains(
            "Removed the apply lock on certplane held by laptop pid 99, repository /elsewhere/pki, certplane 9.9.9 since "
        ),
        "{}",
        unlock.both()
    );
    let removed = lock_record(&bao, "certplane");
    assert_eq!(removed["released"], json!(true));
    assert!(removed["removed_by"].as_str().is_some(), "{removed}");
    let none = run(&["force-unlock", dir]);
    none.expect(0);
    assert!(
        none.stdout
            .contains("No certplane holds the apply lock on certplane."),
        "{}",
        none.both()
    );
    bao.bao_ok(&["delete", "pki_int/roles/web"]);
    run(&["apply", "--auto-approve", dir]).expect(0);
}

#[test]
fn a_stale_lock_of_a_dead_holder_is_broken() {
    let bao = OpenBao::start();
    let repo = tempfile::tempdir().unwrap();
    write_repo(repo.path(), 256);
    let dir = repo.path().to_str().unwrap();
    let addr = bao.addr();
    let run = |args: &[&str]| certplane_as(&addr, bao.token(), bao.dir(), args);
    run(&["apply", "--auto-approve", dir]).expect(0);
    bao.bao_ok(&["delete", "pki_int/roles/web"]);
    // A holder that crashed (pid long gone) and whose lease ended.
    put_lock(&bao, "crashed-runner", 999_999, -5, false);
    let got = run(&["apply", "--auto-approve", dir]);
    got.expect(0);
    assert!(
        got.stderr.contains("breaking a stale apply lock")
            && got.stderr.contains("crashed-runner pid 999999"),
        "{}",
        got.both()
    );
    assert!(read(&bao, "pki_int/roles/web").is_some());
    let record = lock_record(&bao, "certplane");
    assert_eq!(record["released"], json!(true));
    assert_ne!(record["holder"]["host"], json!("crashed-runner"));

    // A lock whose latest version was deleted by hand is free too.
    bao.bao_ok(&["kv", "delete", "-mount=certplane", "lock"]);
    bao.bao_ok(&["delete", "pki_int/roles/web"]);
    run(&["apply", "--auto-approve", dir]).expect(0);
    assert!(read(&bao, "pki_int/roles/web").is_some());
}

#[test]
fn the_lock_mount_is_configurable_and_a_foreign_engine_there_is_refused() {
    let bao = OpenBao::start();
    let repo = tempfile::tempdir().unwrap();
    write_repo(repo.path(), 256);
    let dir = repo.path().to_str().unwrap();
    let addr = bao.addr();
    let run = |args: &[&str]| certplane_as(&addr, bao.token(), bao.dir(), args);

    bao.bao_ok(&["secrets", "enable", "-path=taken", "pki"]);
    let refused = run(&["apply", "--auto-approve", "--lock-mount", "taken", dir]);
    refused.expect(1);
    assert!(
        refused
            .stderr
            .contains("the lock mount taken is a pki engine, not KV version 2"),
        "{}",
        refused.both()
    );
    assert!(read(&bao, "pki_int/roles/web").is_none(), "nothing applied");
    bao.bao_ok(&["secrets", "enable", "-path=kv1", "-version=1", "kv"]);
    let v1 = run(&["apply", "--auto-approve", "--lock-mount", "kv1", dir]);
    v1.expect(1);
    assert!(
        v1.stderr
            .contains("the lock mount kv1 is a kv version 1 engine, not KV version 2"),
        "{}",
        v1.both()
    );
    assert!(read(&bao, "pki_int/roles/web").is_none(), "nothing applied");
    let bad = run(&["apply", "--auto-approve", "--lock-mount", "sys/x", dir]);
    bad.expect(1);
    assert!(bad.stderr.contains("invalid lock mount"), "{}", bad.both());

    run(&["apply", "--auto-approve", "--lock-mount", "ops/locks", dir]).expect(0);
    let mounts = read(&bao, "sys/mounts").unwrap();
    let entry = &mounts["ops/locks/"];
    assert_eq!(entry["type"], json!("kv"), "{mounts}");
    assert_eq!(entry["options"]["version"], json!("2"));
    assert_eq!(entry["options"]["managed-by"], json!("certplane"));
    assert_eq!(lock_record(&bao, "ops/locks")["released"], json!(true));
    assert!(mounts.get("certplane/").is_none(), "{mounts}");

    let policy = certplane(
        &["policy", "--lock-mount", "ops/locks", dir],
        &[],
        bao.dir(),
    );
    policy.expect(0);
    for path in [
        "path \"ops/locks/data/lock\"",
        "path \"ops/locks/metadata/lock\"",
        "path \"sys/mounts/ops/locks\"",
        "path \"ops/locks/data/pending/*\"",
        "path \"pki_int/key/certplane-pending-*\"",
    ] {
        assert!(policy.stdout.contains(path), "{path}\n{}", policy.stdout);
    }
}

#[test]
fn sigterm_stops_the_apply_between_two_changes_and_releases_the_lock() {
    let bao = OpenBao::start();
    let proxy = FaultProxy::start(&bao.addr());
    let repo = tempfile::tempdir().unwrap();
    write_repo(repo.path(), 256);
    let dir = repo.path().to_str().unwrap();
    // The root's signature takes 3 s: SIGTERM arrives while it is in flight.
    proxy.fault(Fault {
        method: "POST".into(),
        path: "pki/issuer/root/sign-intermediate".into(),
        kind: FaultKind::Delay(Duration::from_secs(3)),
        times: 1,
    });
    let mut child = command(bao.dir())
        .args(["apply", "--auto-approve", "--render"])
        .arg(bao.dir().join("rendered"))
        .arg(dir)
        .env("VAULT_ADDR", proxy.addr())
        .env("VAULT_TOKEN", bao.token())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.count("POST", "pki/issuer/root/sign-intermediate") == 0 {
        assert!(
            Instant::now() < deadline,
            "the apply never reached the signature"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let code = terminate(&mut child, 60).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("stopped before vault:pki_int/roles/web: interrupted by a signal"),
        "{stdout}\n{stderr}"
    );
    // The change in flight finished; the next one was not made.
    assert!(
        stdout.contains("vault:pki_int/issuer/int: created"),
        "{stdout}"
    );
    assert!(read(&bao, "pki_int/roles/web").is_none());
    assert_eq!(lock_record(&bao, "certplane")["released"], json!(true));
    // Nothing half-made is left: the next apply only adds the role.
    let next = certplane_as(
        &proxy.addr(),
        bao.token(),
        bao.dir(),
        &["apply", "--auto-approve", dir],
    );
    next.expect(0);
    assert!(
        next.stdout
            .contains("Apply complete! 1 created, 0 updated, 0 replaced, 0 deleted."),
        "{}",
        next.both()
    );
}

#[test]
fn a_plan_that_changed_under_the_lock_is_stale_and_nothing_is_written() {
    // The plan shown is made without the lock; if the live state moves
    // before the lock is taken, the apply stops instead of applying
    // something else than what was shown.
    let bao = OpenBao::start_with_audit();
    let proxy = FaultProxy::start(&bao.addr());
    let repo = tempfile::tempdir().unwrap();
    write_repo(repo.path(), 256);
    let dir = repo.path().to_str().unwrap();
    let tester = named_token(&bao, "tester");
    certplane_as(
        &bao.addr(),
        &tester,
        bao.dir(),
        &["apply", "--auto-approve", dir],
    )
    .expect(0);
    bao.bao_ok(&["delete", "pki_int/roles/web"]);
    // The first read of the lock is held back 2 s; meanwhile someone else
    // changes the role's mount config.
    proxy.fault(Fault {
        method: "GET".into(),
        path: "certplane/data/lock".into(),
        kind: FaultKind::Delay(Duration::from_secs(2)),
        times: 1,
    });
    let mark = bao.audit_records().len();
    let addr = proxy.addr();
    let home = bao.dir();
    let got = std::thread::scope(|s| {
        let h = s.spawn(|| certplane_as(&addr, &tester, home, &["apply", "--auto-approve", dir]));
        let deadline = Instant::now() + Duration::from_secs(60);
        while proxy.count("GET", "certplane/data/lock") == 0 {
            assert!(Instant::now() < deadline, "no lock read");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (status, reply) = post(
            &bao,
            "pki_int/roles/web",
            &json!({"allowed_domains": ["example.org"], "max_ttl": "1h"}),
        );
        assert!(status < 300, "{reply}");
        h.join().unwrap()
    });
    got.expect(1);
    assert!(
        got.stderr.contains(
            "error: plan is stale: vault:pki_int/roles/web changed since the plan was made (planned: create; now: update); nothing was applied; run apply again"
        ),
        "{}",
        got.both()
    );
    let writes = successful_writes(&bao, "tester", mark);
    assert!(
        writes.iter().all(|(_, p)| p == "certplane/data/lock"),
        "only the lock is taken and released: {writes:?}"
    );
    assert_eq!(
        read(&bao, "pki_int/roles/web").unwrap()["max_ttl"],
        json!(3600)
    );
    assert_eq!(lock_record(&bao, "certplane")["released"], json!(true));
}

#[test]
fn a_saved_plan_is_applied_only_if_it_still_holds_under_the_lock() {
    let bao = OpenBao::start_with_audit();
    let repo = tempfile::tempdir().unwrap();
    write_repo(repo.path(), 256);
    let dir = repo.path().to_str().unwrap();
    let addr = bao.addr();
    let tester = named_token(&bao, "tester");
    let run = |args: &[&str]| certplane_as(&addr, &tester, bao.dir(), args);
    run(&["apply", "--auto-approve", dir]).expect(0);
    bao.bao_ok(&["delete", "pki_int/roles/web"]);
    let saved = bao.dir().join("plan.json");
    let saved = saved.to_str().unwrap();
    run(&["plan", dir, "--out", saved]).expect(2);

    // The live state moved after the plan was saved.
    bao.bao_ok(&["write", "pki_int/roles/web", "allowed_domains=example.org"]);
    let mark = bao.audit_records().len();
    let stale = run(&["apply", "--auto-approve", saved]);
    stale.expect(1);
    assert!(
        stale.stderr.contains(
            // Checked when the file is read (and again under the lock).
            "error: plan is stale: vault:pki_int/roles/web changed since the plan was made"
        ),
        "{}",
        stale.both()
    );
    let writes = successful_writes(&bao, "tester", mark);
    assert!(
        writes.iter().all(|(_, p)| p == "certplane/data/lock"),
        "nothing but the lock: {writes:?}"
    );
    assert_eq!(
        read(&bao, "pki_int/roles/web").unwrap()["allowed_domains"],
        json!(["example.org"])
    );

    // A saved plan that still holds is applied.
    bao.bao_ok(&["delete", "pki_int/roles/web"]);
    run(&["plan", dir, "--out", saved]).expect(2);
    run(&["apply", "--auto-approve", saved]).expect(0);
    assert_eq!(
        read(&bao, "pki_int/roles/web").unwrap()["allowed_domains"],
        json!(["example.com"])
    );
}

/// Regression: right after a KV version 2 mount is made (by this apply or by
/// another certplane), OpenBao answers its reads and writes with 400
/// "Upgrading from non-versioned to versioned data" for a moment, and the
/// apply failed with that error. The lock waits until the mount is ready.
#[test]
fn a_lock_mount_still_upgrading_is_waited_for() {
    let bao = OpenBao::start();
    let repo = tempfile::tempdir().unwrap();
    write_repo(repo.path(), 256);
    let dir = repo.path().to_str().unwrap();
    let proxy = FaultProxy::start(&bao.addr());
    let upgrading = "Upgrading from non-versioned to versioned data. This backend will be \
                     unavailable for a brief period and will resume service shortly.";
    for (method, times) in [("GET", 3), ("POST", 2)] {
        proxy.fault(Fault {
            method: method.into(),
            path: "certplane/data/lock".into(),
            kind: FaultKind::Error {
                status: 400,
                message: upgrading.into(),
            },
            times,
        });
    }
    let got = certplane_as(
        &proxy.addr(),
        bao.token(),
        bao.dir(),
        &["apply", "--auto-approve", dir],
    );
    got.expect(0);
    assert!(read(&bao, "pki_int/roles/web").is_some());
    let refused: Vec<_> = proxy
        .seen_at("GET", "certplane/data/lock")
        .into_iter()
        .chain(proxy.seen_at("POST", "certplane/data/lock"))
        .filter(|s| s.injected)
        .collect();
    assert_eq!(
        refused.len(),
        5,
        "every injected refusal was met: {refused:?}"
    );
}
