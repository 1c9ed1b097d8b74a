//! Validation checks that need generated certificates or several objects:
//! imported and external CAs read from PEM, signing cycles, manual signers.

use std::path::Path;

use crate::common::write;

const H: &str = "apiVersion: certplane.dev/v1alpha1\n";

/// A CA certificate (and its key, for bundles) valid for `days`.
fn ca(path_len: Option<u8>, is_ca: bool, days: i64) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "Test CA");
    p.is_ca = match (is_ca, path_len) {
        (false, _) => rcgen::IsCa::ExplicitNoCa,
        (true, Some(n)) => rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(n)),
        (true, None) => rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained),
    };
    let now = std::time::SystemTime::now();
    p.not_before = (now - std::time::Duration::from_secs(3600)).into();
    p.not_after = (now + std::time::Duration::from_secs(days as u64 * 86400)).into();
    let cert = p.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn diags(dir: &Path) -> Vec<String> {
    let repo = certplane::load::load(dir).unwrap_or_else(|e| panic!("{e}"));
    certplane::validate::validate(&repo)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn intermediate(name: &str, signer: &str, ttl: &str) -> String {
    format!(
        "{H}kind: PkiMount\nmetadata: {{name: {name}}}\nspec:\n  ca:\n    intermediate:\n      commonName: {name}\n      ttl: {ttl}\n      signedBy:\n{signer}"
    )
}

#[test]
fn an_imported_ca_bounds_ttls_by_its_remaining_lifetime() {
    let d = tempfile::tempdir().unwrap();
    let (cert, key) = ca(Some(1), true, 30);
    write(d.path(), "offline/bundle.pem", &format!("{cert}{key}"));
    write(
        d.path(),
        "pki.yaml",
        &format!(
            "{H}kind: PkiMount\nmetadata: {{name: pki}}\nspec:\n  maxLeaseTTL: 8760h\n  ca:\n    import: {{pemBundleFrom: {{file: offline/bundle.pem}}}}\n---\n{}",
            intermediate("pki_int", "        mount: pki\n", "24h")
        ),
    );
    let shown = diags(d.path());
    assert_eq!(shown.len(), 1, "{shown:#?}");
    assert!(shown[0].contains("pki.yaml:5:3"), "{}", shown[0]);
    assert!(
        shown[0].contains("maxLeaseTTL 8760h exceeds CA certificate's remaining lifetime"),
        "{}",
        shown[0]
    );
    // The key of the bundle is never echoed.
    assert!(!shown[0].contains("PRIVATE KEY"));
}

#[test]
fn an_imported_parent_with_pathlen_zero_cannot_sign() {
    let d = tempfile::tempdir().unwrap();
    let (cert, key) = ca(Some(0), true, 365);
    write(d.path(), "bundle.pem", &format!("{cert}{key}"));
    write(
        d.path(),
        "pki.yaml",
        &format!(
            "{H}kind: PkiMount\nmetadata: {{name: pki}}\nspec:\n  ca:\n    import: {{pemBundleFrom: {{file: bundle.pem}}}}\n---\n{}",
            intermediate("pki_int", "        mount: pki\n", "24h")
        ),
    );
    let shown = diags(d.path());
    assert_eq!(shown.len(), 1, "{shown:#?}");
    assert!(shown[0].contains("pki.yaml:17:"), "{}", shown[0]);
    assert!(shown[0].contains("path length 0"), "{}", shown[0]);
}

#[test]
fn an_external_signer_must_be_a_ca_and_outlive_the_intermediate() {
    let d = tempfile::tempdir().unwrap();
    let (leaf, _) = ca(None, false, 365);
    let (short, _) = ca(None, true, 10);
    write(d.path(), "leaf.pem", &leaf);
    write(d.path(), "short.pem", &short);
    let ext = |f: &str| {
        format!(
            "        external: {{caCertFile: {f}, caKeyFrom: {{env: CERTPLANE_VAR_UNUSED_KEY}}}}\n"
        )
    };
    write(
        d.path(),
        "a.yaml",
        &intermediate("a", &ext("leaf.pem"), "24h"),
    );
    write(
        d.path(),
        "b.yaml",
        &intermediate("b", &ext("short.pem"), "8760h"),
    );
    write(
        d.path(),
        "c.yaml",
        &intermediate("c", &ext("missing.pem"), "24h"),
    );
    let shown = diags(d.path());
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown[0].contains("a.yaml:") && shown[0].contains("is not a CA certificate"),
        "{}",
        shown[0]
    );
    assert!(
        shown[1].contains("b.yaml:8:") && shown[1].contains("ttl 8760h exceeds external CA"),
        "{}",
        shown[1]
    );
    assert!(
        shown[2].contains("c.yaml:") && shown[2].contains("cannot read"),
        "{}",
        shown[2]
    );
}

#[test]
fn intermediates_signing_each_other_are_a_cycle() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "pki.yaml",
        &format!(
            "{}---\n{}",
            intermediate("x", "        mount: y\n", "24h"),
            intermediate("y", "        mount: x\n", "24h")
        ),
    );
    let shown = diags(d.path());
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(shown.iter().all(|s| s.contains("cycle")), "{shown:#?}");
}

#[test]
fn a_manual_signer_may_wait_for_its_certificate() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "pki.yaml",
        &intermediate(
            "int",
            "        manual: {certificateFile: int-signed.pem}\n",
            "24h",
        ),
    );
    assert!(diags(d.path()).is_empty());
    write(d.path(), "int-signed.pem", "not a certificate");
    let shown = diags(d.path());
    assert_eq!(shown.len(), 1, "{shown:#?}");
    assert!(
        shown[0].contains("does not hold a readable certificate"),
        "{}",
        shown[0]
    );
}

/// A long repository's manifests are checked on several threads: every
/// problem is still found, once, and reported in the manifests' order,
/// with its file and line (a run of manifests boundary falls between the
/// broken ones).
#[test]
fn the_problems_of_many_manifests_come_in_their_order() {
    let d = tempfile::tempdir().unwrap();
    let n = 1100;
    let broken = [0usize, 3, 274, 275, 550, 551, 824, 1099];
    let mut text = String::new();
    for i in 0..n {
        let dns = if broken.contains(&i) {
            "notalist".to_string()
        } else {
            format!("[c{i}.example.com]")
        };
        text.push_str(&format!(
            "---\napiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {{name: c{i}, namespace: apps}}\nspec:\n  secretName: c{i}-tls\n  dnsNames: {dns}\n  issuerRef: {{name: ext, kind: External, group: example.com}}\n"
        ));
    }
    write(d.path(), "certs.yaml", &text);
    let shown = diags(d.path());
    assert_eq!(shown.len(), broken.len(), "{shown:#?}");
    for (line, i) in shown.iter().zip(broken) {
        // Each document takes 8 lines; dnsNames is its 7th.
        let at = format!("certs.yaml:{}:", 8 * i + 7);
        assert!(line.contains(&at), "{at} in {line}");
        assert!(
            line.contains(&format!("Certificate c{i}:")),
            "c{i} in {line}"
        );
    }
}
