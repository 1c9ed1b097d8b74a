//! A root rotation with cross-signing, against a real OpenBao (issue 10,
//! "Root rotation"): the intermediate keeps its key, which the new root
//! signs too (a twin issuer in the intermediate's mount, `manual_chain` on
//! both), so that a leaf verifies under the old root and under the new one;
//! the twin becomes the intermediate's default once the new root is the
//! default, the first issuer is retired, and the old root with it. Every
//! step is a plan change with its reason; a second apply writes nothing; a
//! cut at each request of the cross-sign resumes and converges; a role
//! pinned by the declared name follows, one pinned by id is flagged.

use serde_json::{Value, json};

use crate::common::*;

/// A root (overlap 1h: stage 2 waits until the test lowers it) and an
/// intermediate signed by it, cross-signed when the root rotates (the
/// default); a role on the declared issuer name and one on the default.
const REPO: &str = r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec:
  maxLeaseTTL: 8760h
  ca:
    root:
      commonName: Cross Root
      issuerName: root
      keyType: ec
      keyBits: 256
      ttl: 8760h
      rotation: {overlap: 1h, safetyBuffer: 1s}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki_int}
spec:
  maxLeaseTTL: 4380h
  ca:
    intermediate:
      commonName: Cross Intermediate
      issuerName: int
      keyType: ec
      keyBits: 256
      ttl: 4380h
      signedBy: {mount: pki}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {name: web}
spec:
  mount: pki_int
  issuerRef: int
  allowedDomains: [example.com]
  allowSubdomains: true
  ttl: 1h
  maxTTL: 2h
  keyType: ec
"#;

/// A role pinned to an issuer by its id.
fn pinned_role(id: &str) -> String {
    format!(
        "---\napiVersion: certplane.dev/v1alpha1\nkind: PkiRole\nmetadata: {{name: pinned}}\nspec:\n  mount: pki_int\n  issuerRef: {id}\n  allowedDomains: [example.com]\n  allowSubdomains: true\n  ttl: 1h\n  maxTTL: 2h\n  keyType: ec\n"
    )
}

/// Every issuer of `mount` with a key: `(id, data)`.
fn keyed_issuers(bao: &OpenBao, mount: &str) -> Vec<(String, Value)> {
    list(bao, &format!("{mount}/issuers"))
        .into_iter()
        .filter_map(|id| read(bao, &format!("{mount}/issuer/{id}")).map(|d| (id, d)))
        .filter(|(_, d)| d["key_id"].as_str().is_some_and(|k| !k.is_empty()))
        .collect()
}

fn pem_of(bao: &OpenBao, mount: &str, id: &str) -> String {
    read(bao, &format!("{mount}/issuer/{id}")).unwrap()["certificate"]
        .as_str()
        .unwrap()
        .to_string()
}

fn chain_of(bao: &OpenBao, mount: &str, id: &str) -> Vec<String> {
    read(bao, &format!("{mount}/issuer/{id}")).unwrap()["manual_chain"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
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

/// Whether some path of valid signatures leads from `leaf` through the
/// certificates of `chain` to `anchor` (every path is tried: the twins
/// share their subject, so the first candidate is not always the one).
fn verifies_through(leaf: &[u8], chain: &[Vec<u8>], anchor: &[u8], depth: usize) -> bool {
    use certplane::pki::x509::is_signed_by;
    if is_signed_by(leaf, anchor) {
        return true;
    }
    depth > 0
        && chain.iter().any(|c| {
            c.as_slice() != leaf
                && is_signed_by(leaf, c)
                && verifies_through(c, chain, anchor, depth - 1)
        })
}

/// A leaf (DER), the issuing CA (PEM) and the `ca_chain` (DERs) Vault
/// returned with it.
type Issued = (Vec<u8>, String, Vec<Vec<u8>>);

/// Issues a leaf through `role`.
fn issue(bao: &OpenBao, role: &str) -> Result<Issued, String> {
    let (status, body) = post(
        bao,
        &format!("pki_int/issue/{role}"),
        &json!({"common_name": "svc.example.com", "ttl": "5s"}),
    );
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    let d = &body["data"];
    let chain = d["ca_chain"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(der).collect())
        .unwrap_or_default();
    Ok((
        der(d["certificate"].as_str().unwrap()),
        d["issuing_ca"].as_str().unwrap().to_string(),
        chain,
    ))
}

/// The plan as JSON, and its exit code.
fn plan_json(bao: &OpenBao, addr: &str, dir: &str) -> (i32, Value) {
    let run = certplane_as(addr, bao.token(), bao.dir(), &["plan", "-o", "json", dir]);
    (run.code, json_plan(&run))
}

/// `(action, reason)` of the change of `addr`.
#[track_caller]
fn change(plan: &Value, addr: &str) -> (String, String) {
    let c = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == json!(addr))
        .unwrap_or_else(|| panic!("no change for {addr}: {plan:#}"));
    (
        c["action"].as_str().unwrap_or_default().to_string(),
        c["reason"].as_str().unwrap_or_default().to_string(),
    )
}

fn warnings_for(plan: &Value, addr: &str) -> Vec<String> {
    plan["warnings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|w| w["address"] == json!(addr))
                .filter_map(|w| w["message"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_root_rotation_cross_signs_the_intermediate_and_leaves_verify_under_both_roots() {
    let bao = OpenBao::start_with_audit();
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
    apply("the first apply");
    let r1 = default_issuer_id(&bao, "pki");
    let i1 = default_issuer_id(&bao, "pki_int");
    write(
        repo.path(),
        "pki.yaml",
        &format!("{REPO}{}", pinned_role(&i1)),
    );
    apply("the pinned role");
    let (_, issuing, _) = issue(&bao, "web").unwrap();
    assert_eq!(der(&issuing), der(&pem_of(&bao, "pki_int", &i1)));

    // Stage 1 of the root, and in the same apply the cross-sign of the
    // intermediate by the new root.
    edit(
        repo.path(),
        "pki.yaml",
        "commonName: Cross Root\n",
        "commonName: Cross Root G2\n",
    );
    let (code, plan) = plan_json(&bao, &addr, dir);
    assert_eq!(code, 2, "{plan:#}");
    let (action, reason) = change(&plan, "vault:pki/issuer/root");
    assert_eq!(action, "replace");
    assert!(reason.starts_with("rotation 1/3: commonName"), "{reason}");
    let (action, reason) = change(&plan, "vault:pki_int/issuer/int");
    assert_eq!(action, "update", "{reason}");
    assert!(
        reason.starts_with(
            "rotation 1/3 (cross-sign): its parent pki makes a new issuer in this apply"
        ) && reason.contains(&format!("the existing key of {i1}")),
        "{reason}"
    );
    let pinned = warnings_for(&plan, "vault:pki_int/roles/pinned");
    assert!(
        pinned.iter().any(|w| w.contains(&format!(
            "pinned by id to issuer {i1}, which a rotation supersedes"
        )) && w.contains("set issuerRef of PkiRole pinned to int")),
        "{pinned:?}"
    );
    apply("rotation 1/3 of the root, with the cross-sign");

    assert_eq!(default_issuer_id(&bao, "pki"), r1);
    let roots = keyed_issuers(&bao, "pki");
    assert_eq!(roots.len(), 2, "{roots:?}");
    let r2 = roots
        .iter()
        .map(|(id, _)| id.clone())
        .find(|id| *id != r1)
        .unwrap();
    let ints = keyed_issuers(&bao, "pki_int");
    assert_eq!(ints.len(), 2, "one twin: {ints:?}");
    let (i2, twin) = ints.iter().find(|(id, _)| *id != i1).unwrap().clone();
    let first = read(&bao, &format!("pki_int/issuer/{i1}")).unwrap();
    assert_eq!(twin["key_id"], first["key_id"], "the twin has the same key");
    assert_eq!(
        default_issuer_id(&bao, "pki_int"),
        i1,
        "the first stays the default"
    );
    let (r1_pem, r2_pem) = (pem_of(&bao, "pki", &r1), pem_of(&bao, "pki", &r2));
    let (i1_pem, i2_pem) = (pem_of(&bao, "pki_int", &i1), pem_of(&bao, "pki_int", &i2));
    let i1_info = certplane::pki::x509::parse_pem(&i1_pem).unwrap();
    let i2_info = certplane::pki::x509::parse_pem(&i2_pem).unwrap();
    assert_eq!(i2_info.common_name, i1_info.common_name);
    assert_eq!(i2_info.issued_by, "Cross Root G2");
    assert_eq!(
        certplane::pki::x509::subject_key_id(&i2_pem),
        certplane::pki::x509::subject_key_id(&i1_pem)
    );
    assert!(certplane::pki::x509::is_signed_by(
        &der(&i2_pem),
        &der(&r2_pem)
    ));
    // manual_chain on both twins: itself first, the other in it, and the
    // roots the chains reach.
    let c1 = chain_of(&bao, "pki_int", &i1);
    let c2 = chain_of(&bao, "pki_int", &i2);
    assert_eq!(c1.len(), 4, "{c1:?}");
    assert_eq!(
        (c1[0].as_str(), c1[2].as_str()),
        (i1.as_str(), i2.as_str()),
        "{c1:?}"
    );
    assert_eq!(
        (c2[0].as_str(), c2[2].as_str()),
        (i2.as_str(), i1.as_str()),
        "{c2:?}"
    );
    assert_eq!(c1[1], c2[3]);
    assert_eq!(c1[3], c2[1]);

    // A leaf of the intermediate (issued by the first twin) verifies under
    // the old root and under the new one, with the chain Vault returns.
    let (leaf, issuing, chain) = issue(&bao, "web").unwrap();
    assert_eq!(der(&issuing), der(&i1_pem));
    for (name, root) in [("old", &r1_pem), ("new", &r2_pem)] {
        assert!(
            verifies_through(&leaf, &chain, &der(root), 4),
            "the leaf does not verify under the {name} root through {} chain certificates",
            chain.len()
        );
    }
    verify_leaf(
        &leaf,
        &i1_pem,
        &r1_pem,
        certplane::vault::observe::unix_now(),
    )
    .unwrap();
    verify_leaf(
        &leaf,
        &i2_pem,
        &r2_pem,
        certplane::vault::observe::unix_now(),
    )
    .unwrap();
    assert!(
        verify_leaf(
            &leaf,
            &i1_pem,
            &r2_pem,
            certplane::vault::observe::unix_now()
        )
        .is_err(),
        "the first twin alone does not lead to the new root"
    );

    // Nothing more to do during the overlap: the plan is clean and a
    // second apply writes nothing.
    let (code, plan) = plan_json(&bao, &addr, dir);
    assert_eq!(code, 0, "{plan:#}");
    let (action, reason) = change(&plan, "vault:pki_int/issuer/int");
    assert_eq!(action, "no_op");
    assert!(
        reason.starts_with(&format!(
            "rotation 1/3 done (cross-signed): {i1} has a twin {i2}"
        )),
        "{reason}"
    );
    let mark = bao.audit_entries().len();
    apply("the second apply");
    assert_eq!(writes_since(&bao, mark), Vec::<(String, String)>::new());

    // The root's stage 2: the old root is retired at once (its only child
    // also chains to the new root).
    edit(repo.path(), "pki.yaml", "overlap: 1h", "overlap: 1s");
    let (code, plan) = plan_json(&bao, &addr, dir);
    assert_eq!(code, 2);
    let (action, reason) = change(&plan, "vault:pki/issuer/root");
    assert_eq!(action, "update");
    assert!(
        reason.starts_with(&format!("rotation 2/3: make the new issuer {r2}"))
            && reason.contains(&format!("retire {r1}")),
        "{reason}"
    );
    apply("rotation 2/3 of the root");
    assert_eq!(default_issuer_id(&bao, "pki"), r2);
    let old_root = read(&bao, &format!("pki/issuer/{r1}")).unwrap();
    assert_eq!(usage(&old_root), ["crl-signing", "read-only"]);

    // The intermediate's stage 2: the twin signed by the new root becomes
    // the default and takes the name; the first one is retired.
    let (code, plan) = plan_json(&bao, &addr, dir);
    assert_eq!(code, 2);
    let (action, reason) = change(&plan, "vault:pki_int/issuer/int");
    assert_eq!(action, "update");
    assert!(
        reason.starts_with(&format!(
            "rotation 2/3 (cross-signed): its parent pki made {r2} the default: make the twin {i2}"
        )) && reason.contains(&format!("retire {i1}")),
        "{reason}"
    );
    apply("rotation 2/3 of the intermediate");
    assert_eq!(default_issuer_id(&bao, "pki_int"), i2);
    assert_eq!(
        read(&bao, "pki_int/issuer/int").unwrap()["issuer_id"],
        json!(i2)
    );
    let first = read(&bao, &format!("pki_int/issuer/{i1}")).unwrap();
    assert_eq!(usage(&first), ["crl-signing", "read-only"]);
    assert_eq!(first["issuer_name"], json!(format!("int-{}", &i1[..8])));
    // The role pinned by the declared name follows: its leaves come from
    // the twin now, and verify under the new root.
    let (leaf, issuing, chain) = issue(&bao, "web").unwrap();
    assert_eq!(der(&issuing), der(&i2_pem));
    assert!(verifies_through(&leaf, &chain, &der(&r2_pem), 4));
    // The role pinned by id does not: Vault refuses, and the plan says so.
    let refused = issue(&bao, "pinned").unwrap_err();
    assert!(
        refused.starts_with("400") || refused.starts_with("500"),
        "{refused}"
    );
    let (code, plan) = plan_json(&bao, &addr, dir);
    assert_eq!(code, 0, "{plan:#}");
    let pinned = warnings_for(&plan, "vault:pki_int/roles/pinned");
    assert!(
        pinned
            .iter()
            .any(|w| w.contains(&format!("pinned by id to issuer {i1}, which is retired"))),
        "{pinned:?}"
    );
    let (action, reason) = change(&plan, &format!("vault:pki_int/issuer/int-{}", &i1[..8]));
    assert_eq!(action, "no_op");
    assert!(reason.starts_with("rotation 3/3 waits"), "{reason}");
    let (action, reason) = change(&plan, &format!("vault:pki/issuer/root-{}", &r1[..8]));
    assert_eq!(action, "no_op");
    assert!(reason.starts_with("rotation 3/3 waits"), "{reason}");
}

/// The repository of the crash test: as [`REPO`], the root's identity
/// `root_cn`.
fn crash_repo(root_cn: &str) -> String {
    REPO.replace("Cross Root", root_cn)
}

#[test]
fn a_cross_sign_cut_at_every_request_resumes_and_converges() {
    use crate::common::proxy::{Fault, FaultKind, FaultProxy};
    let bao = OpenBao::start();
    let proxy = FaultProxy::start(&bao.addr());
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().to_str().unwrap();
    write(repo.path(), "pki.yaml", &crash_repo("Crash Root"));
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
    let r1 = default_issuer_id(&bao, "pki");
    let i1 = default_issuer_id(&bao, "pki_int");
    write(repo.path(), "pki.yaml", &crash_repo("Crash Root G2"));

    // The new root is made and its reply lost: the cross-sign is not
    // reached; the next apply cross-signs with the root it finds.
    let cut = |method: &str, path: &str| {
        let before = proxy.faulted().len();
        proxy.fault(Fault {
            method: method.into(),
            path: path.into(),
            kind: FaultKind::DropReply,
            times: 1,
        });
        let run = apply();
        assert_eq!(run.code, 1, "{path}: {}", run.both());
        assert_eq!(proxy.faulted().len(), before + 1, "{path} was not cut");
        assert_eq!(default_issuer_id(&bao, "pki_int"), i1, "{path}");
    };
    cut("POST", "pki/issuers/generate/root/internal");
    let r2 = keyed_issuers(&bao, "pki")
        .into_iter()
        .map(|(id, _)| id)
        .find(|id| *id != r1)
        .expect("the new root was made");
    let plan = certplane_as(&addr, bao.token(), bao.dir(), &["plan", dir]);
    assert!(
        plan.stdout.contains(&format!(
            "rotation 1/3 (cross-sign): its parent pki rotates to {r2}"
        )),
        "{}",
        plan.both()
    );
    cut("POST", "pki_int/issuers/generate/intermediate/existing");
    cut("POST", &format!("pki/issuer/{r2}/sign-intermediate"));
    cut("POST", "pki_int/intermediate/set-signed");
    cut("PATCH", &format!("pki_int/issuer/{i1}"));
    let ints = keyed_issuers(&bao, "pki_int");
    assert_eq!(
        ints.len(),
        2,
        "one twin, however often it was cut: {ints:?}"
    );
    let i2 = ints
        .iter()
        .map(|(id, _)| id.clone())
        .find(|id| *id != i1)
        .unwrap();
    cut("PATCH", &format!("pki_int/issuer/{i2}"));

    apply().expect(0);
    let plan = certplane_as(&addr, bao.token(), bao.dir(), &["plan", dir]);
    assert_eq!(plan.code, 0, "{}", plan.both());
    assert!(
        plan.stdout.contains("rotation 1/3 done (cross-signed)"),
        "{}",
        plan.both()
    );
    assert_eq!(keyed_issuers(&bao, "pki_int").len(), 2);
    assert_eq!(chain_of(&bao, "pki_int", &i1).first(), Some(&i1));
    assert!(chain_of(&bao, "pki_int", &i1).contains(&i2));
    assert_eq!(chain_of(&bao, "pki_int", &i2).first(), Some(&i2));
    assert!(chain_of(&bao, "pki_int", &i2).contains(&i1));
}

/// Lives of seconds: the first twin expires within the test.
const SHORT: &str = r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec:
  maxLeaseTTL: 120s
  ca:
    root:
      commonName: Short Root
      issuerName: root
      keyType: ec
      keyBits: 256
      ttl: 120s
      rotation: {safetyBuffer: 1s}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki_int}
spec:
  maxLeaseTTL: 15s
  ca:
    intermediate:
      commonName: Short Intermediate
      issuerName: int
      keyType: ec
      keyBits: 256
      ttl: 15s
      signedBy: {mount: pki}
      rotation: {safetyBuffer: 1s}
"#;

#[test]
fn the_first_twin_is_deleted_once_expired_and_the_chain_of_the_other_cleared() {
    let bao = OpenBao::start();
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().to_str().unwrap();
    write(repo.path(), "pki.yaml", SHORT);
    let addr = bao.addr();
    let apply = |what: &str| {
        let run = certplane_as(
            &addr,
            bao.token(),
            bao.dir(),
            &["apply", "--auto-approve", dir],
        );
        assert_eq!(run.code, 0, "{what}: {}", run.both());
    };
    apply("the first apply");
    let i1 = default_issuer_id(&bao, "pki_int");
    // The root rotates (no overlap: stage 2 at the next apply); the twin
    // is asked a longer life than the first one has.
    edit(
        repo.path(),
        "pki.yaml",
        "commonName: Short Root\n",
        "commonName: Short Root G2\n",
    );
    edit(repo.path(), "pki.yaml", "ttl: 15s", "ttl: 50s");
    edit(repo.path(), "pki.yaml", "TTL: 15s", "TTL: 50s");
    apply("rotation 1/3 of the root, the cross-sign");
    apply("rotation 2/3 of the root");
    apply("rotation 2/3 of the intermediate");
    let i2 = default_issuer_id(&bao, "pki_int");
    assert_ne!(i2, i1);
    assert!(chain_of(&bao, "pki_int", &i2).contains(&i1));
    let first = read(&bao, &format!("pki_int/issuer/{i1}")).unwrap();
    let not_after = certplane::pki::x509::parse_pem(first["certificate"].as_str().unwrap())
        .unwrap()
        .not_after;
    while certplane::vault::observe::unix_now() < not_after + 2 {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (code, plan) = plan_json(&bao, &addr, dir);
    assert_eq!(code, 2, "{plan:#}");
    let (action, reason) = change(&plan, &format!("vault:pki_int/issuer/int-{}", &i1[..8]));
    assert_eq!(action, "delete");
    assert!(reason.starts_with("rotation 3/3"), "{reason}");
    apply("rotation 3/3 of the first twin");
    assert!(read(&bao, &format!("pki_int/issuer/{i1}")).is_none());
    assert_eq!(chain_of(&bao, "pki_int", &i2), Vec::<String>::new());
    assert_eq!(keyed_issuers(&bao, "pki_int").len(), 1);
    let (leaf, _, chain) = issue_short(&bao);
    let r2 = default_issuer_id(&bao, "pki");
    assert!(verifies_through(
        &leaf,
        &chain,
        &der(&pem_of(&bao, "pki", &r2)),
        4
    ));
    let (code, plan) = plan_json(&bao, &addr, dir);
    assert_eq!(code, 0, "{plan:#}");
}

/// A leaf signed through a role written here (the short repository has
/// none).
fn issue_short(bao: &OpenBao) -> Issued {
    let (status, body) = post(
        bao,
        "pki_int/roles/t",
        &json!({"allow_any_name": true, "key_type": "ec", "ttl": "5s"}),
    );
    assert!(status < 300, "{status}: {body}");
    issue(bao, "t").unwrap()
}
