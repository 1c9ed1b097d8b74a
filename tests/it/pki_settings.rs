//! Issuer and mount settings against a real OpenBao: the CA's `settings`
//! (usage, leafNotAfterBehavior, manualChain, per-issuer AIA URLs with
//! templating), `config/cluster`, `config/crl`, `config/auto-tidy` and
//! `config/acme` (with the mount tuning ACME needs) are applied, read back
//! as declared, planned clean a second time, and a change made by hand is
//! planned and repaired. Then the live checks: a CA with less life left
//! than a role's maxTTL and a Certificate's duration, with `truncate`, is
//! a warning naming each object and the fix.

use crate::common::*;
use serde_json::{Value, json};

/// A root with every setting, an intermediate whose CA settings name its
/// AIA URLs by template, a role, and ACME.
fn repo_yaml(addr: &str) -> String {
    format!(
        r#"
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {{name: pki}}
spec:
  maxLeaseTTL: 8760h
  ca:
    root:
      commonName: Settings Root
      issuerName: root-1
      keyType: ec
      ttl: 8760h
      settings:
        usage: [read-only, issuing-certificates, crl-signing]
        leafNotAfterBehavior: err
        manualChain: [root-1]
        issuingCertificates: [{addr}/v1/pki/issuer/root-1/der]
        crlDistributionPoints: [{addr}/v1/pki/issuer/root-1/crl/der]
  crl:
    expiry: 48h
    ocspDisable: false
    ocspExpiry: 1h
    autoRebuild: true
    autoRebuildGracePeriod: 6h
    enableDelta: true
    deltaRebuildInterval: 30m
  autoTidy:
    enabled: true
    intervalDuration: 1h
    tidyCertStore: true
    tidyRevokedCerts: true
    tidyExpiredIssuers: true
    tidyMoveLegacyCaBundle: true
    safetyBuffer: 72h
    issuerSafetyBuffer: 720h
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {{name: pki_int}}
spec:
  maxLeaseTTL: 4380h
  ca:
    intermediate:
      commonName: Settings Intermediate
      issuerName: int-1
      keyType: ec
      ttl: 4380h
      rotateBefore: 720h
      signedBy: {{mount: pki}}
      settings:
        leafNotAfterBehavior: truncate
        enableAiaUrlTemplating: true
        issuingCertificates: ["{{{{cluster_aia_path}}}}/issuer/{{{{issuer_id}}}}/der"]
        ocspServers: ["{{{{cluster_path}}}}/ocsp"]
  cluster:
    path: {addr}/v1/pki_int
    aiaPath: {addr}/v1/pki_int
  acme:
    enabled: true
    allowedRoles: [web]
    defaultDirectoryPolicy: role:web
    eabPolicy: not-required
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {{name: web}}
spec:
  mount: pki_int
  allowedDomains: [example.com]
  allowSubdomains: true
  maxTTL: 72h
---
# cert-manager's ACME client, at the role's directory under the cluster
# path: checked with the mount as one unit (validate passes).
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {{name: vault-acme}}
spec:
  acme:
    server: {addr}/v1/pki_int/roles/web/acme/directory
    privateKeySecretRef: {{name: vault-acme-account}}
    solvers: [{{http01: {{ingress: {{ingressClassName: nginx}}}}}}]
"#
    )
}

#[track_caller]
fn data(bao: &OpenBao, path: &str) -> Value {
    read(bao, path).unwrap_or_else(|| panic!("{path} is not there"))
}

#[test]
fn every_setting_is_applied_read_back_and_planned_clean() {
    let bao = OpenBao::start();
    let repo = tempfile::tempdir().unwrap();
    write(repo.path(), "repo.yaml", &repo_yaml(&bao.addr()));
    let dir = repo.path().to_str().unwrap();

    let first = certplane_root(&bao, &["plan", dir]);
    first.expect(2);
    for addr in [
        "vault:pki/issuer/root-1/settings",
        "vault:pki_int/issuer/int-1/settings",
        "vault:pki_int/config/cluster",
        "vault:pki/config/auto-tidy",
        "vault:pki_int/config/acme",
        "vault:pki/config/crl",
    ] {
        assert!(first.stdout.contains(addr), "{addr}\n{}", first.both());
    }
    certplane_root(&bao, &["apply", "--auto-approve", dir]).expect(0);

    // What Vault holds is what was declared.
    let root = data(&bao, "pki/issuer/root-1");
    assert_eq!(
        root["usage"],
        json!("crl-signing,issuing-certificates,read-only")
    );
    assert_eq!(root["leaf_not_after_behavior"], json!("err"));
    assert_eq!(root["manual_chain"], json!([root["issuer_id"]]));
    assert_eq!(
        root["issuing_certificates"],
        json!([format!("{}/v1/pki/issuer/root-1/der", bao.addr())])
    );
    let int = data(&bao, "pki_int/issuer/int-1");
    assert_eq!(int["leaf_not_after_behavior"], json!("truncate"));
    assert_eq!(int["enable_aia_url_templating"], json!(true));
    assert_eq!(
        int["issuing_certificates"],
        json!(["{{cluster_aia_path}}/issuer/{{issuer_id}}/der"])
    );
    // Not declared: left as Vault made it.
    assert_eq!(
        int["usage"],
        json!("crl-signing,issuing-certificates,ocsp-signing,read-only")
    );
    let cluster = data(&bao, "pki_int/config/cluster");
    assert_eq!(cluster["path"], json!(format!("{}/v1/pki_int", bao.addr())));
    let crl = data(&bao, "pki/config/crl");
    assert_eq!(crl["auto_rebuild"], json!(true));
    assert_eq!(crl["enable_delta"], json!(true));
    assert_eq!(crl["ocsp_expiry"], json!("3600"), "sent in seconds");
    assert_eq!(crl["delta_rebuild_interval"], json!("1800"));
    let tidy = data(&bao, "pki/config/auto-tidy");
    assert_eq!(tidy["enabled"], json!(true));
    assert_eq!(tidy["interval_duration"], json!(3600));
    assert_eq!(tidy["tidy_expired_issuers"], json!(true));
    assert_eq!(tidy["issuer_safety_buffer"], json!(720 * 3600));
    let acme = data(&bao, "pki_int/config/acme");
    assert_eq!(acme["enabled"], json!(true));
    assert_eq!(acme["allowed_roles"], json!(["web"]));
    assert_eq!(acme["default_directory_policy"], json!("role:web"));
    let mounts = data(&bao, "sys/mounts");
    assert_eq!(
        mounts["pki_int/"]["config"]["passthrough_request_headers"],
        json!(["If-Modified-Since"])
    );
    assert_eq!(
        mounts["pki_int/"]["config"]["allowed_response_headers"],
        json!(["Last-Modified", "Location", "Replay-Nonce", "Link"])
    );
    // ACME answers, with the URLs under the mount's cluster path.
    let port: u16 = bao.addr().rsplit(':').next().unwrap().parse().unwrap();
    let (code, body) = http_get(port, "/v1/pki_int/acme/directory").expect("OpenBao answers");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains(&format!("{}/v1/pki_int/acme/new-nonce", bao.addr())),
        "{body}"
    );

    // A second plan is clean.
    let second = certplane_root(&bao, &["plan", dir]);
    second.expect(0);

    // A change by hand to a managed field is planned and repaired; one to
    // a field not declared is left alone.
    bao.bao_ok(&[
        "patch",
        "pki/issuer/root-1",
        "usage=read-only,issuing-certificates",
        "ocsp_servers=http://elsewhere/ocsp",
    ]);
    bao.bao_ok(&["write", "pki/config/auto-tidy", "tidy_cert_store=false"]);
    bao.bao_ok(&[
        "write",
        "sys/mounts/pki_int/tune",
        "allowed_response_headers=Link",
    ]);
    let drift = certplane_root(&bao, &["plan", dir]);
    drift.expect(2);
    assert!(
        drift
            .stdout
            .contains("vault:pki/issuer/root-1/settings (update)"),
        "{}",
        drift.both()
    );
    assert!(drift.stdout.contains("changed: usage"), "{}", drift.both());
    assert!(
        drift.stdout.contains("changed: tidy_cert_store"),
        "{}",
        drift.both()
    );
    assert!(
        drift.stdout.contains("vault:sys/mounts/pki_int (update)")
            && drift.stdout.contains("changed: allowed_response_headers"),
        "{}",
        drift.both()
    );
    certplane_root(&bao, &["apply", "--auto-approve", dir]).expect(0);
    certplane_root(&bao, &["plan", dir]).expect(0);
    assert_eq!(
        data(&bao, "sys/mounts")["pki_int/"]["config"]["allowed_response_headers"],
        json!(["Last-Modified", "Location", "Replay-Nonce", "Link"]),
        "the tune restores what ACME needs"
    );
    let root = data(&bao, "pki/issuer/root-1");
    assert_eq!(
        root["usage"],
        json!("crl-signing,issuing-certificates,read-only")
    );
    assert_eq!(
        root["issuer_name"],
        json!("root-1"),
        "a patch keeps the name"
    );
    assert_eq!(root["ocsp_servers"], json!(["http://elsewhere/ocsp"]));
}

#[test]
fn the_policy_grants_what_the_settings_are_read_and_written_with() {
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        "repo.yaml",
        &repo_yaml("http://127.0.0.1:8200"),
    );
    let home = tempfile::tempdir().unwrap();
    let run = certplane(&["policy", repo.path().to_str().unwrap()], &[], home.path());
    run.expect(0);
    let hcl = &run.stdout;
    for (path, cap) in [
        ("pki/issuer/*", "patch"),
        ("pki_int/config/cluster", "update"),
        ("pki_int/config/acme", "update"),
        ("pki/config/auto-tidy", "update"),
        ("pki/config/crl", "update"),
    ] {
        let block = hcl
            .split("path ")
            .find(|b| b.starts_with(&format!("\"{path}\"")))
            .unwrap_or_else(|| panic!("no block for {path}\n{hcl}"));
        assert!(block.contains(&format!("\"{cap}\"")), "{path}: {block}");
    }
}

#[test]
fn a_ca_shorter_lived_than_what_is_asked_of_it_is_a_warning_naming_each_object() {
    let bao = OpenBao::start();
    // A root made by hand ten days before it expires (it has aged: the
    // repository declares the year it was made with), truncating leaves.
    bao.bao_ok(&["secrets", "enable", "pki"]);
    bao.bao_ok(&[
        "write",
        "pki/root/generate/internal",
        "common_name=Short Root",
        "issuer_name=short",
        "key_type=ec",
        "ttl=240h",
    ]);
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        "repo.yaml",
        r#"
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec:
  ca:
    root:
      commonName: Short Root
      issuerName: short
      keyType: ec
      ttl: 8760h
      settings: {leafNotAfterBehavior: truncate}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {name: web}
spec: {mount: pki, allowedDomains: [example.com], allowSubdomains: true, maxTTL: 720h}
---
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: vault, namespace: apps}
spec:
  vault:
    server: http://127.0.0.1:8200
    path: pki/sign/web
    auth:
      tokenSecretRef: {name: vault-token, key: token}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: site, namespace: apps}
spec:
  secretName: site-tls
  commonName: site.example.com
  dnsNames: [site.example.com]
  duration: 480h
  issuerRef: {name: vault}
"#,
    );
    let dir = repo.path().to_str().unwrap();
    certplane_root(&bao, &["apply", "--auto-approve", dir]).expect(0);
    let plan = certplane_root(&bao, &["plan", dir]);
    plan.expect(0);
    let out = &plan.stdout;
    assert!(
        out.contains("! vault:pki/roles/web (warning)"),
        "{}",
        plan.both()
    );
    assert!(out.contains("role web maxTTL 720h is longer than"), "{out}");
    assert!(out.contains("lower maxTTL of PkiRole web"), "{out}");
    assert!(
        out.contains("! cert-manager.io/Certificate/apps/site (warning)"),
        "{out}"
    );
    assert!(
        out.contains("lower spec.duration of Certificate apps/site"),
        "{out}"
    );
    assert!(
        out.contains("! vault:pki/issuer/short (warning)")
            && out.contains("leafNotAfterBehavior truncate"),
        "{out}"
    );
    assert!(out.contains("3 warnings (see above)."), "{out}");
    let json = json_plan(&certplane_root(&bao, &["plan", "-o", "json", dir]));
    let warned: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        warned,
        [
            "vault:pki/roles/web",
            "cert-manager.io/Certificate/apps/site",
            "vault:pki/issuer/short"
        ]
    );

    // The setting left to Vault (no longer declared, still truncate live):
    // the issuer is still flagged, from its own live setting.
    let text = std::fs::read_to_string(repo.path().join("repo.yaml")).unwrap();
    let undeclared = text.replace("      settings: {leafNotAfterBehavior: truncate}\n", "");
    assert_ne!(undeclared, text);
    write(repo.path(), "repo.yaml", &undeclared);
    let plan = certplane_root(&bao, &["plan", dir]);
    plan.expect(0);
    assert!(
        plan.stdout.contains("! vault:pki/issuer/short (warning)")
            && plan.stdout.contains("leafNotAfterBehavior truncate"),
        "{}",
        plan.both()
    );
}
