//! An intermediate whose apply stops half-way is resumed, never made again
//! (issue 7: each interrupted apply used to leave one more orphan key in the
//! child mount and one more certificate signed by the root). Against a real
//! OpenBao, with failures injected at every step of making it: a reply
//! dropped by a loopback proxy after the server did the work (what a crash
//! or a timeout looks like), or a token whose policy denies `set-signed`.
//! After the failures and one good apply, the child mount has exactly one
//! key, in use by its issuer, no key with certplane's pending name, and the
//! root signed one certificate for it, plus one per interruption of the
//! root's own sign call (the one documented loss).

use crate::common;

use std::path::Path;

use crate::common::*;
use common::proxy::{Fault, FaultKind, FaultProxy};
use serde_json::{Value, json};

const PENDING: &str = "certplane-pending-int-ec256";

fn write_repo(dir: &Path) {
    std::fs::write(
        dir.join("pki.yaml"),
        r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec:
  maxLeaseTTL: 87600h
  ca:
    root: {commonName: Resume Root, issuerName: root, keyType: ec, keyBits: 256, ttl: 87600h}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki_int}
spec:
  maxLeaseTTL: 43800h
  ca:
    intermediate:
      commonName: Resume Intermediate
      issuerName: int
      keyType: ec
      keyBits: 256
      ttl: 43800h
      signedBy: {mount: pki}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {name: web}
spec:
  mount: pki_int
  allowedDomains: [example.com]
  allowSubdomains: true
  maxTTL: 24h
"#,
    )
    .unwrap();
}

/// `(id, name)` of every key of `mount`.
fn keys(bao: &OpenBao, mount: &str) -> Vec<(String, String)> {
    let (status, body) = block_on(bao.http("LIST", &format!("{mount}/keys"), None));
    if status != 200 {
        return Vec::new();
    }
    let info = &body["data"]["key_info"];
    body["data"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let id = k.as_str().unwrap().to_string();
            let name = info[&id]["key_name"].as_str().unwrap_or("").to_string();
            (id, name)
        })
        .collect()
}

/// The key ids the issuers of `mount` use.
fn keys_in_use(bao: &OpenBao, mount: &str) -> Vec<String> {
    list(bao, &format!("{mount}/issuers"))
        .iter()
        .filter_map(|id| read(bao, &format!("{mount}/issuer/{id}")))
        .filter_map(|d| d["key_id"].as_str().map(str::to_string))
        .filter(|k| !k.is_empty())
        .collect()
}

/// Certificates the root mount has issued (its own included).
fn root_certs(bao: &OpenBao) -> usize {
    list(bao, "pki/certs").len()
}

/// The end state every test wants: one key in the child mount, used by the
/// default issuer `int`, no pending name anywhere, no record left, and a
/// clean plan.
fn assert_converged(bao: &OpenBao, addr: &str, home: &Path, dir: &str) {
    let ks = keys(bao, "pki_int");
    assert_eq!(ks.len(), 1, "exactly one key in pki_int: {ks:?}");
    assert_eq!(ks[0].1, "", "its pending name is cleared: {ks:?}");
    assert_eq!(keys_in_use(bao, "pki_int"), vec![ks[0].0.clone()]);
    let default = read(bao, "pki_int/issuer/default").expect("a default issuer");
    assert_eq!(default["issuer_name"], json!("int"));
    assert_eq!(default["key_id"], json!(ks[0].0));
    assert!(
        read(bao, &format!("certplane/data/pending/pki_int/{PENDING}")).is_none(),
        "the record of the signed certificate is removed once it is imported"
    );
    let plan = certplane_as(addr, bao.token(), home, &["plan", dir]);
    plan.expect(0);
    assert!(plan.stdout.contains("No changes"), "{}", plan.both());
}

#[test]
fn an_intermediate_interrupted_at_every_step_is_resumed_with_one_key() {
    let bao = OpenBao::start();
    let proxy = FaultProxy::start(&bao.addr());
    let repo = tempfile::tempdir().unwrap();
    write_repo(repo.path());
    let dir = repo.path().to_str().unwrap();
    let addr = proxy.addr();
    let apply = || {
        certplane_as(
            &addr,
            bao.token(),
            bao.dir(),
            &["apply", "--auto-approve", dir],
        )
    };
    let plan = || certplane_as(&addr, bao.token(), bao.dir(), &["plan", dir]);

    // 1. The key is generated, the reply lost.
    proxy.fault(Fault::drop_post(
        "pki_int/issuers/generate/intermediate/internal",
    ));
    apply().expect(1);
    let base = root_certs(&bao);
    assert_eq!(
        keys(&bao, "pki_int")
            .into_iter()
            .map(|k| k.1)
            .collect::<Vec<_>>(),
        vec![PENDING.to_string()],
        "the key has certplane's pending name"
    );
    let pending = plan();
    pending.expect(2);
    assert!(
        pending.stdout.contains(&format!(
            "intermediate pending: key {PENDING} generated, not yet signed; apply resumes it"
        )),
        "{}",
        pending.both()
    );

    // 2. The root signs, the reply is lost: the one signature that cannot
    //    be recovered.
    proxy.fault(Fault::drop_post("pki/issuer/root/sign-intermediate"));
    apply().expect(1);
    assert_eq!(root_certs(&bao), base + 1);
    assert_eq!(keys(&bao, "pki_int").len(), 1, "resumed, no new key");

    // 3. Signed again (recorded this time), imported, the reply lost.
    proxy.fault(Fault::drop_post("pki_int/intermediate/set-signed"));
    apply().expect(1);
    assert_eq!(root_certs(&bao), base + 2);
    assert_eq!(keys(&bao, "pki_int").len(), 1);
    let finishing = plan();
    finishing.expect(2);
    assert!(
        finishing.stdout.contains("finish an interrupted apply"),
        "{}",
        finishing.both()
    );

    // 4. Naming it loses its reply (the first issuer of the mount is its
    //    default already).
    // The keyed one (set-signed also imports the root's certificate).
    let imported: Vec<String> = list(&bao, "pki_int/issuers")
        .into_iter()
        .filter(|id| {
            read(&bao, &format!("pki_int/issuer/{id}"))
                .is_some_and(|d| d["key_id"].as_str().is_some_and(|k| !k.is_empty()))
        })
        .collect();
    assert_eq!(imported.len(), 1, "{imported:?}");
    proxy.fault(Fault {
        method: "PATCH".into(),
        path: format!("pki_int/issuer/{}", imported[0]),
        kind: FaultKind::DropReply,
        times: 1,
    });
    apply().expect(1);

    // 5. A good apply finishes it: no new key, no new signature.
    apply().expect(0);
    assert_eq!(
        proxy.faulted(),
        vec![
            "POST pki_int/issuers/generate/intermediate/internal".to_string(),
            "POST pki/issuer/root/sign-intermediate".to_string(),
            "POST pki_int/intermediate/set-signed".to_string(),
            format!("PATCH pki_int/issuer/{}", imported[0]),
        ]
    );
    assert_eq!(
        proxy.count("POST", "pki_int/issuers/generate/intermediate/internal"),
        1,
        "one key was ever generated"
    );
    assert_eq!(
        proxy.count("POST", "pki_int/issuers/generate/intermediate/existing"),
        2,
        "the resumed applies made CSRs for the same key"
    );
    assert_eq!(
        root_certs(&bao),
        base + 2,
        "the root signed once for the certificate in use and once for the lost reply"
    );
    assert!(read(&bao, "pki_int/roles/web").is_some());
    assert_converged(&bao, &addr, bao.dir(), dir);
}

#[test]
fn a_token_without_set_signed_fails_three_times_then_one_signature_is_imported() {
    let bao = OpenBao::start();
    let repo = tempfile::tempdir().unwrap();
    write_repo(repo.path());
    let dir = repo.path().to_str().unwrap();
    let addr = bao.addr();
    let policy = bao.dir().join("no-set-signed.hcl");
    std::fs::write(
        &policy,
        "path \"*\" {\n  capabilities = [\"create\", \"read\", \"update\", \"patch\", \"delete\", \"list\", \"sudo\"]\n}\n\
         path \"pki_int/intermediate/set-signed\" {\n  capabilities = [\"deny\"]\n}\n",
    )
    .unwrap();
    bao.bao_ok(&["policy", "write", "no-set-signed", policy.to_str().unwrap()]);
    let token = bao
        .bao_ok(&[
            "token",
            "create",
            "-no-default-policy",
            "-policy=no-set-signed",
            "-field=token",
        ])
        .trim()
        .to_string();

    let mut base = None;
    for attempt in 1..=3 {
        let run = certplane_as(&addr, &token, bao.dir(), &["apply", "--auto-approve", dir]);
        run.expect(1);
        assert!(
            run.stderr.contains("pki_int/intermediate/set-signed"),
            "attempt {attempt}: {}",
            run.both()
        );
        let ks = keys(&bao, "pki_int");
        assert_eq!(ks.len(), 1, "attempt {attempt}: one pending key: {ks:?}");
        assert_eq!(ks[0].1, PENDING);
        // The root's own certificate, and one signature for the pending key.
        let n = root_certs(&bao);
        assert_eq!(
            *base.get_or_insert(n),
            n,
            "attempt {attempt}: no new signature"
        );
    }
    let record = read(&bao, &format!("certplane/data/pending/pki_int/{PENDING}"))
        .expect("the signed certificate is recorded");
    assert!(
        record["data"]["certificate"]
            .as_str()
            .is_some_and(|c| c.contains("BEGIN CERTIFICATE")),
        "{record}"
    );
    assert!(
        !record.to_string().contains("PRIVATE KEY"),
        "the record holds no key"
    );

    let good = certplane_as(
        &addr,
        bao.token(),
        bao.dir(),
        &["apply", "--auto-approve", dir],
    );
    good.expect(0);
    assert_eq!(
        Some(root_certs(&bao)),
        base,
        "the recorded certificate is imported: the root signs nothing more"
    );
    assert_converged(&bao, &addr, bao.dir(), dir);
}

#[test]
fn leftover_pending_keys_are_deleted_and_other_keys_stay() {
    let bao = OpenBao::start();
    let repo = tempfile::tempdir().unwrap();
    write_repo(repo.path());
    let dir = repo.path().to_str().unwrap();
    let addr = bao.addr();
    let run = |args: &[&str]| certplane_as(&addr, bao.token(), bao.dir(), args);
    run(&["apply", "--auto-approve", dir]).expect(0);
    let in_use = keys(&bao, "pki_int");
    assert_eq!(in_use.len(), 1);

    // An older attempt with another key type, one with the declared name
    // while the CA is complete, one made by hand, one unnamed.
    for (kind, name) in [
        ("rsa", "certplane-pending-int-rsa2048"),
        ("ec", PENDING),
        ("ec", "my-own-key"),
        ("ec", ""),
    ] {
        let mut body = json!({});
        if !name.is_empty() {
            body["key_name"] = json!(name);
        }
        if kind == "rsa" {
            body["key_type"] = json!("rsa");
            body["key_bits"] = json!(2048);
        } else {
            body["key_type"] = json!("ec");
        }
        let (status, reply) = post(&bao, "pki_int/keys/generate/internal", &body);
        assert_eq!(status, 200, "{reply}");
    }
    assert_eq!(keys(&bao, "pki_int").len(), 5);

    let plan = run(&["plan", dir]);
    plan.expect(2);
    for name in ["certplane-pending-int-rsa2048", PENDING] {
        assert!(
            plan.stdout
                .contains(&format!("- vault:pki_int/key/{name} (delete)")),
            "{}",
            plan.both()
        );
    }
    assert!(!plan.stdout.contains("my-own-key"), "{}", plan.both());
    let json_plan = json_plan(&run(&["plan", "-o", "json", dir]));
    let deletes: Vec<&Value> = json_plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "delete")
        .collect();
    assert_eq!(deletes.len(), 2, "{json_plan}");
    assert!(
        deletes.iter().all(|c| c["kind"] == "pki_key"),
        "{json_plan}"
    );

    run(&["apply", "--auto-approve", dir]).expect(0);
    let mut left: Vec<String> = keys(&bao, "pki_int").into_iter().map(|k| k.1).collect();
    left.sort();
    assert_eq!(
        left,
        vec!["", "", "my-own-key"],
        "only certplane's leftovers go"
    );
    assert!(
        keys(&bao, "pki_int")
            .iter()
            .any(|(id, _)| *id == in_use[0].0),
        "the key in use stays"
    );
    let clean = run(&["plan", dir]);
    clean.expect(0);
}
