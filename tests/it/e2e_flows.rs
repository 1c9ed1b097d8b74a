//! End to end, the CA flows other than a generated root: an imported root
//! with an intermediate under it, an intermediate signed in-process by an
//! external CA key, an intermediate signed by hand; and the failures a user
//! meets first: a sealed Vault, a closed port, `apply` without
//! `--auto-approve` when stdin is not a terminal.

use std::time::Duration;

use crate::common::*;
use certplane::pki::x509::{is_signed_by, parse_pem};

/// The most a failure against a dead or sealed Vault may take: well under
/// the client's connect (5 s) and request (30 s) timeouts.
const QUICK: Duration = Duration::from_secs(4);

#[track_caller]
fn assert_no_key_material(run: &Run, key_pem: &str) {
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains("PRIVATE KEY"), "{}", run.both());
        for line in pem_body_lines(key_pem) {
            assert!(
                !text.contains(&line),
                "key material printed: {line}\n{}",
                run.both()
            );
        }
    }
}

#[test]
fn imported_root_signs_an_intermediate() {
    let bao = OpenBao::start();
    let repo = tempfile::tempdir().unwrap();
    let (root_pem, root_key) = rcgen_ca("Offline Root");
    write(
        repo.path(),
        "offline/bundle.pem",
        &format!("{root_pem}{root_key}"),
    );
    write(
        repo.path(),
        "pki.yaml",
        "apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: offline_root}
spec:
  maxLeaseTTL: 87600h
  ca:
    import:
      pemBundleFrom: {file: offline/bundle.pem}
      issuerName: offline-root
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: team_int}
spec:
  maxLeaseTTL: 8760h
  ca:
    intermediate:
      commonName: Team Intermediate
      issuerName: team-int
      keyType: ec
      keyBits: 256
      ttl: 17520h
      signedBy: {mount: offline_root}
",
    );
    let dir = repo.path().to_str().unwrap();
    certplane_root(&bao, &["plan", dir]).expect(2);
    let apply = certplane_root(&bao, &["apply", "--auto-approve", "-vv", dir]);
    apply.expect(0);
    assert_no_key_material(&apply, &root_key);

    // The imported issuer is our certificate, byte for byte.
    let live_root = default_issuer_pem(&bao, "offline_root");
    assert_eq!(der(&live_root), der(&root_pem));
    let issuer = read(&bao, "offline_root/issuer/offline-root").expect("issuer by name");
    assert_eq!(der(issuer["certificate"].as_str().unwrap()), der(&root_pem));
    // The intermediate chains to it.
    let int = parse_pem(&default_issuer_pem(&bao, "team_int")).unwrap();
    assert_eq!(int.common_name, "Team Intermediate");
    assert_eq!(int.issued_by, "Offline Root");
    assert!(int.is_ca);
    assert!(is_signed_by(&int.der, &der(&root_pem)));

    certplane_root(&bao, &["plan", dir]).expect(0);
}

#[test]
fn external_ca_key_signs_in_process_and_is_never_printed() {
    let bao = OpenBao::start();
    let repo = tempfile::tempdir().unwrap();
    let (root_pem, root_key) = rcgen_ca("External Root");
    write(repo.path(), "ca/root.pem", &root_pem);
    // The key lives outside the repository, as it would on an offline disk:
    // the operator hands it over in a variable the repository may read.
    write(
        repo.path(),
        "pki.yaml",
        "apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: ext_int}
spec:
  maxLeaseTTL: 8760h
  ca:
    intermediate:
      commonName: External Intermediate
      keyType: ec
      keyBits: 256
      ttl: 17520h
      maxPathLength: 0
      signedBy:
        external:
          caCertFile: ca/root.pem
          caKeyFrom: {env: CERTPLANE_VAR_OFFLINE_ROOT_KEY}
",
    );
    let dir = repo.path().to_str().unwrap();
    let addr = bao.addr();
    let env = [
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_TOKEN", bao.token()),
        ("CERTPLANE_VAR_OFFLINE_ROOT_KEY", root_key.as_str()),
    ];
    let plan = certplane(&["plan", "-vvv", dir], &env, bao.dir());
    plan.expect(2);
    assert_no_key_material(&plan, &root_key);
    let plan_json = certplane(&["plan", "-o", "json", dir], &env, bao.dir());
    plan_json.expect(2);
    json_plan(&plan_json);
    assert_no_key_material(&plan_json, &root_key);
    let mut traced = env.to_vec();
    traced.push(("CERTPLANE_LOG", "trace"));
    let apply = certplane(
        &["apply", "--auto-approve", "-vvv", dir],
        &traced,
        bao.dir(),
    );
    apply.expect(0);
    assert_no_key_material(&apply, &root_key);

    let int = parse_pem(&default_issuer_pem(&bao, "ext_int")).unwrap();
    assert_eq!(int.common_name, "External Intermediate");
    assert_eq!(int.issued_by, "External Root");
    assert!(int.is_ca);
    assert_eq!(int.path_len, Some(0));
    assert!(is_signed_by(&int.der, &der(&root_pem)));

    let again = certplane(&["plan", "-vvv", dir], &env, bao.dir());
    again.expect(0);
    assert_no_key_material(&again, &root_key);
}

#[test]
fn manual_signing_writes_the_csr_then_imports_the_certificate() {
    let bao = OpenBao::start();
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        "pki.yaml",
        "apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: man_int}
spec:
  maxLeaseTTL: 8760h
  ca:
    intermediate:
      commonName: Manual Intermediate
      keyType: ec
      keyBits: 256
      signedBy:
        manual: {certificateFile: ca/int.pem}
",
    );
    let dir = repo.path().to_str().unwrap();
    let csr_file = repo.path().join("ca/int.pem.csr");

    certplane_root(&bao, &["plan", dir]).expect(2);
    let first = certplane_root(&bao, &["apply", "--auto-approve", dir]);
    first.expect(0);
    let csr = std::fs::read_to_string(&csr_file).unwrap_or_else(|e| {
        panic!(
            "apply must write {} ({e})\n{}",
            csr_file.display(),
            first.both()
        )
    });
    assert!(csr.contains("BEGIN CERTIFICATE REQUEST"), "{csr}");
    assert!(
        first.stdout.contains("BEGIN CERTIFICATE REQUEST") || first.stdout.contains("int.pem"),
        "apply tells the user what to sign\n{}",
        first.both()
    );
    // Not signed yet: no issuer on the mount, and the plan says what it is
    // waiting for (a wait is not a change: exit 0 keeps CI green).
    assert!(list(&bao, "man_int/issuers").is_empty());
    let waiting = certplane_root(&bao, &["plan", dir]);
    waiting.expect(0);
    assert!(
        waiting.stdout.contains("BEGIN CERTIFICATE REQUEST") && waiting.stdout.contains("int.pem"),
        "the plan shows the CSR still to sign\n{}",
        waiting.both()
    );
    let waiting_json = json_plan(&certplane_root(&bao, &["plan", "-o", "json", dir]));
    assert!(
        waiting_json
            .to_string()
            .contains("BEGIN CERTIFICATE REQUEST"),
        "{waiting_json}"
    );

    // The user signs the CSR with their offline CA.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let root_params = ca_params("Hand Root");
    let root_pem = root_params.self_signed(&key).unwrap().pem();
    let root = rcgen::Issuer::new(root_params, key);
    let mut req = rcgen::CertificateSigningRequestParams::from_pem(&csr).unwrap();
    req.params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    req.params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    req.params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    req.params.not_after = rcgen::date_time_ymd(2040, 1, 1);
    req.params.use_authority_key_identifier_extension = true;
    let signed = req.signed_by(&root).unwrap().pem();
    write(repo.path(), "ca/int.pem", &format!("{signed}{root_pem}"));

    certplane_root(&bao, &["apply", "--auto-approve", dir]).expect(0);
    let live = default_issuer_pem(&bao, "man_int");
    assert_eq!(der(&live), der(&signed));
    let int = parse_pem(&live).unwrap();
    assert_eq!(int.common_name, "Manual Intermediate");
    assert!(is_signed_by(&int.der, &der(&root_pem)));
    certplane_root(&bao, &["plan", dir]).expect(0);
}

#[track_caller]
fn assert_one_line_failure(run: &Run, needle: &str) {
    run.expect(1);
    assert!(
        run.elapsed < QUICK,
        "took {:?}\n{}",
        run.elapsed,
        run.both()
    );
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line on stderr\n{}", run.both());
    assert!(
        lines[0].to_lowercase().contains(needle),
        "expected {needle:?}\n{}",
        run.both()
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.both());
}

#[test]
fn a_sealed_vault_fails_quickly_with_one_line() {
    let bao = OpenBao::start();
    bao.bao_ok(&["operator", "seal"]);
    let dir = homelab();
    let dir = dir.to_str().unwrap();
    assert_one_line_failure(&certplane_root(&bao, &["plan", dir]), "sealed");
    assert_one_line_failure(
        &certplane_root(&bao, &["apply", "--auto-approve", dir]),
        "sealed",
    );
}

#[test]
fn a_closed_port_fails_quickly_with_one_line() {
    let port = free_port();
    let home = tempfile::tempdir().unwrap();
    let addr = format!("http://127.0.0.1:{port}");
    let dir = homelab();
    let run = certplane(
        &["plan", dir.to_str().unwrap()],
        &[("VAULT_ADDR", &addr), ("VAULT_TOKEN", "not-used")],
        home.path(),
    );
    assert_one_line_failure(&run, "cannot reach");
    assert!(run.stderr.contains(&addr), "{}", run.both());
}

#[test]
fn apply_without_auto_approve_on_a_pipe_writes_nothing() {
    let bao = OpenBao::start_with_audit();
    let mark = bao.audit_entries().len();
    let dir = homelab();
    let run = certplane_root(&bao, &["apply", dir.to_str().unwrap()]);
    run.expect(1);
    assert!(run.stderr.contains("--auto-approve"), "{}", run.both());
    assert_eq!(writes_since(&bao, mark), Vec::<(String, String)>::new());
    let mounts = read(&bao, "sys/mounts").unwrap();
    assert!(mounts.get("pki/").is_none(), "{mounts}");
    assert!(mounts.get("pki_int/").is_none(), "{mounts}");
}
