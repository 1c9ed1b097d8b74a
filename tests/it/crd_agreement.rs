//! The built-in cert-manager schemas (what certplane checks at run time)
//! agree with the real cert-manager CRDs (what the API server checks) on a
//! table of valid and invalid objects.
//!
//! The CRDs are test data outside the repository (cert-manager v1.21.1):
//! `CERTPLANE_CRDS_DIR` names their directory, by default
//! `../shared/fixtures/cert-manager-crds/` (see `build.rs`). Without them
//! these tests are reported as ignored; under CI (`CI=true`) a missing
//! fixture fails them.
//! Rows marked `webhook` are rules of cert-manager's validating webhook that
//! the CRD cannot express (one issuer type, one Vault auth method):
//! certplane rejects them and the CRD alone accepts them.

use std::path::PathBuf;

use certplane::validate::crd;
use serde_json::{Value, json};

fn crd_dir() -> PathBuf {
    PathBuf::from(env!("CERTPLANE_CRDS_FIXTURES"))
}

/// A CRD of the fixtures. A missing one fails the test: without the
/// fixtures the tests are ignored (outside CI), never passed.
fn load_crd(file: &str) -> Value {
    let path = crd_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the cert-manager CRD fixture {} ({e}): set CERTPLANE_CRDS_DIR to the \
             directory of the cert-manager v1.21.1 CRDs (see README, Development)",
            path.display()
        )
    });
    serde_saphyr::from_str::<Value>(&text).expect("CRD is YAML")
}

fn issuer(spec: Value) -> Value {
    json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
        "metadata": {"name": "i", "namespace": "sandbox", "labels": {"a": "b"}}, "spec": spec})
}

fn certificate(spec: Value) -> Value {
    json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "c", "namespace": "sandbox"}, "spec": spec})
}

fn vault(extra: Value) -> Value {
    let mut v = json!({"server": "https://vault:8200", "path": "pki/sign/web",
        "auth": {"kubernetes": {"role": "issuer", "serviceAccountRef": {"name": "sa"}}}});
    if let (Value::Object(v), Value::Object(e)) = (&mut v, extra) {
        v.extend(e);
    }
    v
}

/// (name, object, valid per the CRD, webhook-only rule). The first error's
/// field path (when invalid) must be the same for both.
fn table() -> Vec<(&'static str, Value, bool, bool)> {
    vec![
        (
            "vault issuer with kubernetes auth",
            issuer(json!({"vault": vault(json!({}))})),
            true,
            false,
        ),
        (
            "vault issuer with mTLS and caBundle",
            issuer(json!({"vault": vault(json!({
            "caBundle": "UEVN", "clientCertSecretRef": {"name": "c", "key": "tls.crt"},
            "clientKeySecretRef": {"name": "c", "key": "tls.key"}}))})),
            true,
            false,
        ),
        (
            "vault issuer with approle",
            issuer(
                json!({"vault": {"server": "https://v", "path": "pki/sign/r",
            "auth": {"appRole": {"path": "approle", "roleId": "r", "secretRef": {"name": "s", "key": "secretId"}}}}}),
            ),
            true,
            false,
        ),
        (
            "acme dns01 cloudflare",
            issuer(json!({"acme": {"server": "https://acme", "email": "a@b.c",
            "privateKeySecretRef": {"name": "k"},
            "solvers": [{"selector": {"dnsZones": ["example.com"]},
                "dns01": {"cloudflare": {"apiTokenSecretRef": {"name": "cf", "key": "api-token"}}}}]}})),
            true,
            false,
        ),
        (
            "acme http01 with an ingress class",
            issuer(json!({"acme": {"server": "https://acme",
            "privateKeySecretRef": {"name": "k"}, "solvers": [{"http01": {"ingress": {"ingressClassName": "nginx"}}}]}})),
            true,
            false,
        ),
        (
            "ca and selfSigned",
            issuer(json!({"ca": {"secretName": "ca"}})),
            true,
            false,
        ),
        ("selfSigned", issuer(json!({"selfSigned": {}})), true, false),
        (
            "unknown field under spec.vault",
            issuer(json!({"vault": vault(json!({"serverr": "x"}))})),
            false,
            false,
        ),
        (
            "vault without path",
            issuer(
                json!({"vault": {"server": "https://v", "auth": {"tokenSecretRef": {"name": "t"}}}}),
            ),
            false,
            false,
        ),
        (
            "appRole without roleId",
            issuer(json!({"vault": {"server": "https://v", "path": "p/sign/r",
            "auth": {"appRole": {"path": "approle", "secretRef": {"name": "s"}}}}})),
            false,
            false,
        ),
        (
            "kubernetes auth without role",
            issuer(json!({"vault": {"server": "https://v", "path": "p/sign/r",
            "auth": {"kubernetes": {"serviceAccountRef": {"name": "s"}}}}})),
            false,
            false,
        ),
        (
            "caBundle not base64",
            issuer(json!({"vault": vault(json!({"caBundle": "-----BEGIN CERTIFICATE-----"}))})),
            false,
            false,
        ),
        (
            "server is a number",
            issuer(json!({"vault": vault(json!({"server": 8200}))})),
            false,
            false,
        ),
        (
            "preferredChain too long",
            issuer(
                json!({"acme": {"server": "https://acme", "privateKeySecretRef": {"name": "k"},
            "preferredChain": "x".repeat(65)}}),
            ),
            false,
            false,
        ),
        (
            "issuer without spec",
            json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "i"}}),
            false,
            false,
        ),
        (
            "two issuer types",
            issuer(json!({"vault": vault(json!({})), "ca": {"secretName": "ca"}})),
            true,
            true,
        ),
        (
            "two vault auth methods",
            issuer(json!({"vault": {"server": "https://v", "path": "p/sign/r",
            "auth": {"tokenSecretRef": {"name": "t"}, "appRole": {"path": "a", "roleId": "r", "secretRef": {"name": "s"}}}}})),
            true,
            true,
        ),
        (
            "certificate, everything",
            certificate(json!({"secretName": "web-tls", "commonName": "web",
            "dnsNames": ["web.example.com"], "ipAddresses": ["10.0.0.1"], "uris": ["spiffe://cluster.local/ns/a/sa/b"],
            "emailAddresses": ["a@example.com"], "duration": "2160h", "renewBefore": "360h", "isCA": false,
            "usages": ["server auth", "client auth", "digital signature"],
            "privateKey": {"algorithm": "ECDSA", "size": 256, "encoding": "PKCS8", "rotationPolicy": "Always"},
            "issuerRef": {"name": "i", "kind": "Issuer", "group": "cert-manager.io"},
            "secretTemplate": {"labels": {"a": "b"}, "annotations": {"c": "d"}},
            "subject": {"organizations": ["Example"]}})),
            true,
            false,
        ),
        (
            "certificate without secretName",
            certificate(json!({"issuerRef": {"name": "i"}})),
            false,
            false,
        ),
        (
            "certificate without issuerRef.name",
            certificate(json!({"secretName": "s", "issuerRef": {"kind": "Issuer"}})),
            false,
            false,
        ),
        (
            "duration is a number",
            certificate(json!({"secretName": "s", "issuerRef": {"name": "i"}, "duration": 24})),
            false,
            false,
        ),
        (
            "algorithm not in the enum",
            certificate(json!({"secretName": "s", "issuerRef": {"name": "i"},
            "privateKey": {"algorithm": "ECDSA256"}})),
            false,
            false,
        ),
        (
            "rotationPolicy not in the enum",
            certificate(json!({"secretName": "s", "issuerRef": {"name": "i"},
            "privateKey": {"rotationPolicy": "Sometimes"}})),
            false,
            false,
        ),
        (
            "unknown usage",
            certificate(
                json!({"secretName": "s", "issuerRef": {"name": "i"}, "usages": ["server"]}),
            ),
            false,
            false,
        ),
        (
            "dnsNames is a string",
            certificate(
                json!({"secretName": "s", "issuerRef": {"name": "i"}, "dnsNames": "a.example.com"}),
            ),
            false,
            false,
        ),
        (
            "secretTemplate label not a string",
            certificate(json!({"secretName": "s", "issuerRef": {"name": "i"},
            "secretTemplate": {"labels": {"a": 1}}})),
            false,
            false,
        ),
        (
            "unknown field in spec",
            certificate(json!({"secretName": "s", "issuerRef": {"name": "i"}, "dnsName": ["a"]})),
            false,
            false,
        ),
        (
            "size is a string",
            certificate(
                json!({"secretName": "s", "issuerRef": {"name": "i"}, "privateKey": {"size": "256"}}),
            ),
            false,
            false,
        ),
    ]
}

#[test]
#[cfg_attr(
    crds_missing,
    ignore = "needs the cert-manager CRD fixtures: set CERTPLANE_CRDS_DIR (see README, Development)"
)]
fn built_in_schemas_agree_with_the_real_crds() {
    let (issuers, certs) = (
        load_crd("cert-manager.io_issuers.yaml"),
        load_crd("cert-manager.io_certificates.yaml"),
    );
    let mut failures = Vec::new();
    for (name, obj, crd_valid, webhook) in table() {
        let kind = obj["kind"].as_str().unwrap();
        let real = crd::crd_schema(
            if kind == "Certificate" {
                &certs
            } else {
                &issuers
            },
            Some("v1"),
        )
        .expect("v1 schema");
        let builtin = crd::builtin(kind).unwrap();
        let real_errs = crd::check(real, &obj);
        let ours = crd::check(builtin, &obj);
        if real_errs.is_empty() != crd_valid {
            failures.push(format!(
                "{name}: the real CRD says {real_errs:?}, the table says valid={crd_valid}"
            ));
        }
        let want_ours_valid = crd_valid && !webhook;
        if ours.is_empty() != want_ours_valid {
            failures.push(format!(
                "{name}: certplane says {ours:?}, want valid={want_ours_valid}"
            ));
        }
        if let (Some(a), Some(b)) = (real_errs.first(), ours.first())
            && a.path != b.path
        {
            failures.push(format!(
                "{name}: errors at different fields: CRD {} vs certplane {}",
                a.path, b.path
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The real ClusterIssuer schema is the Issuer's: the built-in set uses one
/// schema for both.
#[test]
#[cfg_attr(
    crds_missing,
    ignore = "needs the cert-manager CRD fixtures: set CERTPLANE_CRDS_DIR (see README, Development)"
)]
fn cluster_issuer_schema_is_the_issuer_schema() {
    let (issuers, cluster) = (
        load_crd("cert-manager.io_issuers.yaml"),
        load_crd("cert-manager.io_clusterissuers.yaml"),
    );
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| *k != "description")
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    let spec =
        |crd: &Value| strip(&crd::crd_schema(crd, Some("v1")).unwrap()["properties"]["spec"]);
    // Not assert_eq!: a difference would print thousands of lines.
    assert!(
        spec(&issuers) == spec(&cluster),
        "the Issuer and ClusterIssuer spec schemas differ (beyond descriptions)"
    );
}

/// Every field the built-in schemas name exists at the same place in the
/// real CRD, with the same type (no invented fields).
#[test]
#[cfg_attr(
    crds_missing,
    ignore = "needs the cert-manager CRD fixtures: set CERTPLANE_CRDS_DIR (see README, Development)"
)]
fn built_in_fields_exist_in_the_real_crds() {
    let (issuers, certs) = (
        load_crd("cert-manager.io_issuers.yaml"),
        load_crd("cert-manager.io_certificates.yaml"),
    );
    fn walk(ours: &Value, real: &Value, path: &str, out: &mut Vec<String>) {
        if let (Some(a), Some(b)) = (ours["type"].as_str(), real["type"].as_str())
            && a != b
        {
            out.push(format!("{path}: type {a} vs {b}"));
        }
        if ours["enum"].is_array() && ours["enum"] != real["enum"] {
            out.push(format!("{path}: enum differs"));
        }
        if let Some(props) = ours["properties"].as_object() {
            for (k, v) in props {
                match real["properties"].get(k) {
                    Some(r) => walk(v, r, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: not in the CRD")),
                }
            }
        }
        if ours["items"].is_object() {
            walk(&ours["items"], &real["items"], &format!("{path}[]"), out);
        }
        let mut a: Vec<&Value> = ours["required"]
            .as_array()
            .map(|r| r.iter().collect())
            .unwrap_or_default();
        let mut b: Vec<&Value> = real["required"]
            .as_array()
            .map(|r| r.iter().collect())
            .unwrap_or_default();
        a.sort_by_key(|v| v.to_string());
        b.sort_by_key(|v| v.to_string());
        if ours["properties"].is_object() && a != b {
            out.push(format!("{path}: required {a:?} vs {b:?}"));
        }
    }
    let mut out = Vec::new();
    for (kind, crd_doc) in [("Issuer", &issuers), ("Certificate", &certs)] {
        let real = crd::crd_schema(crd_doc, Some("v1")).unwrap();
        walk(
            &crd::builtin(kind).unwrap()["properties"]["spec"],
            &real["properties"]["spec"],
            kind,
            &mut out,
        );
    }
    assert!(out.is_empty(), "{}", out.join("\n"));
}

/// Every `pattern` of the cert-manager CRDs is one certplane checks (Go's
/// RE2 syntax read by `regex`, see `validate::pattern`), none is skipped as
/// unsupported; and each decides a sample value the way the API server does.
#[test]
#[cfg_attr(
    crds_missing,
    ignore = "needs the cert-manager CRD fixtures: set CERTPLANE_CRDS_DIR (see README, Development)"
)]
fn every_crd_pattern_is_checked() {
    use certplane::validate::pattern::Pattern;
    fn patterns<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(p)) = m.get("pattern") {
                    out.push(p);
                }
                m.values().for_each(|v| patterns(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| patterns(v, out)),
            _ => {}
        }
    }
    let files = [
        "cert-manager.io_issuers.yaml",
        "cert-manager.io_clusterissuers.yaml",
        "cert-manager.io_certificates.yaml",
        "cert-manager.io_certificaterequests.yaml",
        "acme.cert-manager.io_challenges.yaml",
        "acme.cert-manager.io_orders.yaml",
    ];
    let crds: Vec<Value> = files.iter().map(|f| load_crd(f)).collect();
    let mut all = Vec::new();
    for crd in &crds {
        patterns(crd, &mut all);
    }
    all.sort_unstable();
    all.dedup();
    assert!(all.len() >= 5, "only {} distinct patterns found", all.len());
    let failures: Vec<String> = all
        .iter()
        .filter_map(|p| Pattern::parse(p).err().map(|e| format!("{p}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A value the API server refuses, and one it accepts.
    let issuers = crd::crd_schema(&crds[0], Some("v1")).unwrap();
    let group = "spec.acme.solvers[0].http01.gatewayHTTPRoute.parentRefs[0].group";
    let errors = crd::check(
        issuers,
        &issuer_with_parent_group("Gateway.Networking.K8s.io"),
    );
    assert!(
        errors
            .iter()
            .any(|e| e.path == group && e.message.contains("does not match the pattern")),
        "{errors:?}"
    );
    let errors = crd::check(
        issuers,
        &issuer_with_parent_group("gateway.networking.k8s.io"),
    );
    assert!(errors.is_empty(), "{errors:?}");
}

fn issuer_with_parent_group(group: &str) -> Value {
    issuer(
        json!({"acme": {"server": "https://acme", "privateKeySecretRef": {"name": "k"},
        "solvers": [{"http01": {"gatewayHTTPRoute": {"parentRefs": [{"name": "gw", "group": group}]}}}]}}),
    )
}
