//! The offline checks of issue 7 ("checks before the first write") agree
//! with a real OpenBao: each input certplane refuses offline is one OpenBao
//! refuses (or would silently turn into something else), and what certplane
//! accepts OpenBao accepts. Every verdict here is asked of the server.

use crate::common;

use certplane::desired::render_hcl;
use certplane::diagnostic::Diagnostic;
use certplane::model::{Duration, PolicySpec};
use certplane::validate::acl::rules_of;
use certplane::validate::extra::{INTERMEDIATE_PARAMS, ROLE_PARAMS, ROOT_PARAMS};
use certplane::validate::names::{generic_name_problem, reserved_mount};
use common::OpenBao;
use serde_json::{Value, json};

/// Percent-encodes a path segment (keeping `/`), as a client sends it.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn ok(status: u16) -> bool {
    (200..300).contains(&status)
}

/// What `validate` says of a repository made of `yaml`.
fn diagnostics(yaml: &str) -> Vec<Diagnostic> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("repo.yaml"), yaml).unwrap();
    match certplane::load::load(dir.path()) {
        Err(d) => d.0,
        Ok(mut repo) => match certplane::expand::expand(&mut repo) {
            Err(d) => d.0,
            Ok(()) => certplane::validate::validate(&repo),
        },
    }
}

/// Policies on which certplane and OpenBao agree, accepted or refused.
const POLICIES: &[&str] = &[
    "path \"pki/sign/web\" { capabilities = [\"update\"] }\n",
    // The regression of issue 9: allowed_parameters before capabilities.
    "path \"secret/foo\" {\n  allowed_parameters = {\n    \"bar\" = [\"zip\", \"zap\"]\n  }\n  capabilities = [\"create\", \"update\"]\n}\n",
    "path \"pki/sign/web\" { capabilities = [\"update\"]\n",
    "path \"x\" { capabilities = [\"write\"] }\n",
    "path \"x\" { capabilities = [\"subscribe\"] }\n",
    "path \"x\" { capabilities = [\"scan\", \"list\"] }\n",
    "path \"x\" { capabilities = [\"Read\"] }\n",
    "path \"x\" { capabilities = [\"root\"] }\n",
    "path \"x\" { capabilities = [1] }\n",
    "path \"x\" { capabilities = [true] }\n",
    "path \"x\" { capabilities = [[\"read\"]] }\n",
    "path \"x\" { capabilities = \"read\" }\n",
    "path \"x\" { capabilitie = [\"read\"] }\n",
    "paths \"x\" { capabilities = [\"read\"] }\n",
    "foo = \"bar\"\npath \"x\" { capabilities = [\"read\"] }\n",
    "path = \"x\"\n",
    "path \"x\" { policy = \"write\" }\n",
    "path \"x\" { policy = \"admin\" }\n",
    "path \"x/+*\" { capabilities = [\"read\"] }\n",
    "path \"x/+/y/*\" { capabilities = [\"read\"] }\n",
    "# nothing but a comment\n",
    "path \"x\" {}\n",
    "path \"x\" { capabilities = [] }\n",
    "name = \"foo\"\npath \"x\" { capabilities = [\"read\"] }\n",
    "path \"x\" { capabilities = [\"deny\", \"read\"] }\n",
    "path \"x\" { capabilities = [\"deny\", \"bogus\"] }\n",
    "path \"x\" { capabilities = [\"read\"] }\npath \"x\" { capabilities = [\"update\"] }\n",
    "path \"x\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"2h\"\n  max_wrapping_ttl = \"1h\"\n}\n",
    "path \"x\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"soon\"\n}\n",
    "path \"x\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = 60\n  max_wrapping_ttl = \"1d\"\n}\n",
    "path \"x\" {\n  capabilities = [\"read\"]\n  expiration = \"tomorrow\"\n}\n",
    "path \"x\" {\n  capabilities = [\"read\"]\n  expiration = \"2099-01-01T00:00:00Z\"\n}\n",
    "path \"x\" {\n  capabilities = [\"bogus\"]\n  expiration = \"2001-01-01T00:00:00Z\"\n}\n",
    "path \"x\" {\n  capabilities = [\"read\"]\n  expiration = \"2099-01-01\"\n}\n",
    "path \"x/\" {\n  capabilities = [\"read\"]\n  list_scan_response_keys_filter_path = \"{{ .path }}{{ .key }}\"\n}\n",
    "path \"x\" { capabilities = [\"read\"] }\n  # trailing comment\n",
    "path x { capabilities = [\"read\"] }\n",
    "path \"x\" \"y\" { capabilities = [\"read\"] }\n",
    "path { capabilities = [\"list\"] }\n",
    "path \"secret/{{identity.entity.id}}/*\" { capabilities = [\"read\"] }\n",
    "path \"/x\" { capabilities = [\"read\"] }\n",
    "path \"x\" {\n  capabilities = [\n    \"read\",\n    \"list\",\n  ]\n}\n",
    "path \"x\" {\n  capabilities = [\"read\"]\n  required_parameters = [\"a\", \"b\"]\n  denied_parameters = { \"*\" = [] }\n  pagination_limit = 10\n  mfa_methods = [\"m\"]\n  comment = \"why\"\n}\n",
    "path \"x\" {\n  capabilities = [\"update\"]\n  allowed_parameters = { \"a\" = \"b\" }\n}\n",
    "path \"x\" {\n  capabilities = [\"update\"]\n  required_parameters = \"a\"\n}\n",
    "path \"x\" {\n  capabilities = [\"read\"]\n  pagination_limit = \"ten\"\n}\n",
    "path \"x\" {\n  capabilities = [\"read\"]\n  pagination_limit = 1.5\n}\n",
    "path \"x\" {\n  capabilities = [\"read\"]\n  foo {}\n}\n",
    "path \"x\" { Capabilities = [\"read\"] }\n",
    "Path \"x\" { capabilities = [\"read\"] }\n",
    "path \"x\" { capabilities = [\"read\"]; }\n",
    "path \"x\" {\n  capabilities = [\"read\"]\n  control_group = { ttl = \"nope\" }\n}\n",
    // JSON after certplane's marker comment is no longer read as JSON.
    "{\"path\": {\"x\": {\"capabilities\": [\"read\"]}}}\n",
];

/// HCL1 that OpenBao reads and certplane (HCL2) refuses: certplane is
/// stricter here, never looser, and says how to write it.
const STRICTER: &[&str] = &[
    "path \"x\" { \"capabilities\" = [\"read\"] }\n",
    "path \"x\" { capabilities = [\"read\"], min_wrapping_ttl = \"1h\" }\n",
    "path \"x\" { capabilities = [\"read\"] } path \"y\" { capabilities = [\"read\"] }\n",
    "path \"x\" {\n  capabilities = [\"read\"]\n  capabilities = [\"list\"]\n}\n",
    "path \"secret/${foo}\" { capabilities = [\"read\"] }\n",
];

async fn vault_accepts_policy(bao: &OpenBao, text: &str) -> (bool, Value) {
    let (status, body) = bao
        .http("PUT", "sys/policies/acl/t", Some(&json!({"policy": text})))
        .await;
    (ok(status), body)
}

fn hcl(text: &str) -> PolicySpec {
    PolicySpec {
        rules: None,
        hcl: Some(text.into()),
    }
}

#[tokio::test]
async fn policy_verdicts_equal_openbaos() {
    let bao = OpenBao::start();
    let mut disagree = Vec::new();
    for text in POLICIES {
        let spec = hcl(text);
        let ours = rules_of(&spec);
        let (theirs, body) = vault_accepts_policy(&bao, &render_hcl(&spec, "checks")).await;
        if ours.is_ok() != theirs {
            disagree.push(format!(
                "{text:?}: certplane {}, OpenBao {} {body}",
                match &ours {
                    Ok(_) => "accepts".to_string(),
                    Err(e) => format!("refuses ({e})"),
                },
                if theirs { "accepts" } else { "refuses" }
            ));
        }
    }
    for text in STRICTER {
        let spec = hcl(text);
        let (theirs, body) = vault_accepts_policy(&bao, &render_hcl(&spec, "checks")).await;
        assert!(
            theirs,
            "OpenBao now refuses {text:?}: {body}; move it to POLICIES"
        );
        let e = rules_of(&spec).expect_err(text);
        assert!(!e.hint.is_empty(), "{text:?}: no hint");
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}

/// A rule path holding a quote renders to a policy OpenBao accepts, but
/// for another path: certplane refuses it instead of granting the wrong one.
#[tokio::test]
async fn a_quoted_rule_path_grants_another_path_in_openbao() {
    let bao = OpenBao::start();
    let yaml = "apiVersion: certplane.dev/v1alpha1\nkind: Policy\nmetadata: {name: t}\nspec:\n  rules:\n    - path: 'pki/sign/\"web\"'\n      capabilities: [update]\n";
    let d = diagnostics(yaml);
    assert!(
        d.iter()
            .any(|d| d.message.contains("reads back as path \"pki/sign/\"")),
        "{d:?}"
    );
    let spec = PolicySpec {
        rules: Some(vec![certplane::model::PolicyRule {
            path: "pki/sign/\"web\"".into(),
            capabilities: vec![certplane::model::Capability::Update],
        }]),
        hcl: None,
    };
    let (accepted, _) = vault_accepts_policy(&bao, &render_hcl(&spec, "checks")).await;
    assert!(accepted);
    let token = bao
        .post(
            "auth/token/create",
            &json!({"policies": ["t"], "no_default_policy": true}),
        )
        .await["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let caps = bao
        .post(
            "sys/capabilities",
            &json!({"token": token, "paths": ["pki/sign/", "pki/sign/\"web\""]}),
        )
        .await;
    assert_eq!(caps["data"]["pki/sign/"], json!(["update"]), "{caps}");
    assert_eq!(caps["data"]["pki/sign/\"web\""], json!(["deny"]), "{caps}");
}

const NAMES: &[&str] = &[
    "web", "we.b", "we_b", "Web", "_x_", "a..b", "x", "int-2026", "a/b", "-web", "web-", ".web",
    "a b", "wé", "a+b", "a@b", "a:b", "a%2Fb",
];

#[tokio::test]
async fn role_and_issuer_names_follow_openbao() {
    let bao = OpenBao::start();
    bao.post("sys/mounts/pki", &json!({"type": "pki"})).await;
    bao.post("sys/auth/approle", &json!({"type": "approle"}))
        .await;
    bao.post("sys/auth/kubernetes", &json!({"type": "kubernetes"}))
        .await;
    let mut disagree = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let ours = generic_name_problem(name).is_none();
        for (path, body) in [
            (
                format!("pki/roles/{}", enc(name)),
                json!({"allow_any_name": true}),
            ),
            (format!("auth/approle/role/{}", enc(name)), json!({})),
            (
                format!("auth/kubernetes/role/{}", enc(name)),
                json!({"bound_service_account_names": ["a"], "bound_service_account_namespaces": ["b"]}),
            ),
        ] {
            let (status, reply) = bao.http("POST", &path, Some(&body)).await;
            if ok(status) != ours {
                disagree.push(format!(
                    "{path}: certplane {ours}, OpenBao {status} {reply}"
                ));
            }
        }
        // Issuer names: a fresh root per name (a number keeps them unique).
        let issuer = if ours {
            format!("{name}{i}")
        } else {
            name.to_string()
        };
        let (status, reply) = bao
            .http(
                "POST",
                "pki/root/generate/internal",
                Some(&json!({"common_name": "t", "ttl": "1h", "issuer_name": issuer})),
            )
            .await;
        if ok(status) != generic_name_problem(&issuer).is_none() {
            disagree.push(format!("issuer {issuer}: OpenBao {status} {reply}"));
        }
    }
    let (status, _) = bao
        .http(
            "POST",
            "pki/root/generate/internal",
            Some(&json!({"common_name": "t", "ttl": "1h", "issuer_name": "default"})),
        )
        .await;
    assert!(!ok(status), "OpenBao accepted the issuer name default");
    let d = diagnostics(
        "apiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata: {name: pki}\nspec:\n  ca:\n    root: {commonName: t, issuerName: default}\n",
    );
    assert!(
        d.iter()
            .any(|d| d.message.contains("issuerName \"default\"")),
        "{d:?}"
    );
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}

/// Auth role and policy names are folded to lower case by OpenBao: `Web`
/// is stored as `web`, so certplane refuses upper case.
#[tokio::test]
async fn openbao_folds_auth_role_and_policy_names() {
    let bao = OpenBao::start();
    bao.post("sys/auth/approle", &json!({"type": "approle"}))
        .await;
    bao.post("auth/approle/role/Web", &json!({})).await;
    let (_, list) = bao.http("LIST", "auth/approle/role", None).await;
    assert_eq!(list["data"]["keys"], json!(["web"]), "{list}");
    let (accepted, _) =
        vault_accepts_policy(&bao, "path \"x\" { capabilities = [\"read\"] }").await;
    assert!(accepted);
    let (status, _) = bao
        .http(
            "PUT",
            "sys/policies/acl/Issuer",
            Some(&json!({"policy": "path \"x\" { capabilities = [\"read\"] }"})),
        )
        .await;
    assert!(ok(status));
    let (_, list) = bao.http("LIST", "sys/policies/acl", None).await;
    let keys = list["data"]["keys"].as_array().unwrap();
    assert!(
        keys.contains(&json!("issuer")) && !keys.contains(&json!("Issuer")),
        "{list}"
    );
    let (status, _) = bao
        .http(
            "PUT",
            "sys/policies/acl/response-wrapping",
            Some(&json!({"policy": "path \"x\" { capabilities = [\"read\"] }"})),
        )
        .await;
    assert!(!ok(status));
    let d = diagnostics(
        "apiVersion: certplane.dev/v1alpha1\nkind: AuthMount\nmetadata: {name: approle}\nspec: {type: approle}\n---\napiVersion: certplane.dev/v1alpha1\nkind: AppRole\nmetadata: {name: Web}\nspec: {mount: approle}\n---\napiVersion: certplane.dev/v1alpha1\nkind: Policy\nmetadata: {name: Issuer}\nspec: {hcl: 'path \"x\" { capabilities = [\"read\"] }'}\n---\napiVersion: certplane.dev/v1alpha1\nkind: Policy\nmetadata: {name: response-wrapping}\nspec: {hcl: 'path \"x\" { capabilities = [\"read\"] }'}\n",
    );
    let text: Vec<String> = d.iter().map(ToString::to_string).collect();
    for want in [
        "as \"web\"",
        "as \"issuer\"",
        "response-wrapping policy cannot be written",
    ] {
        assert!(text.iter().any(|t| t.contains(want)), "{want}: {text:#?}");
    }
}

const MOUNTS: &[&str] = &[
    "sys",
    "sys/x",
    "auth",
    "auth/x",
    "identity",
    "identity/x",
    "cubbyhole",
    "cubbyhole/x",
    "audit",
    "audit/x",
    "token",
    "sys-x",
    "identityx",
    "x/sys",
    "pki_t",
    "Pki_u",
];

#[tokio::test]
async fn reserved_mount_paths_follow_openbao() {
    let bao = OpenBao::start();
    let mut disagree = Vec::new();
    for m in MOUNTS {
        let (status, reply) = bao
            .http(
                "POST",
                &format!("sys/mounts/{}", enc(m)),
                Some(&json!({"type": "pki"})),
            )
            .await;
        if ok(status) != reserved_mount(m, false).is_none() {
            disagree.push(format!("secrets {m}: OpenBao {status} {reply}"));
        }
    }
    for m in [
        "token",
        "token/x",
        "auth",
        "identity",
        "cubbyhole",
        "audit",
        "approle_t",
    ] {
        let (status, reply) = bao
            .http(
                "POST",
                &format!("sys/auth/{}", enc(m)),
                Some(&json!({"type": "approle"})),
            )
            .await;
        if ok(status) != reserved_mount(m, true).is_none() {
            disagree.push(format!("auth {m}: OpenBao {status} {reply}"));
        }
        if ok(status) {
            bao.http("DELETE", &format!("sys/auth/{}", enc(m)), None)
                .await;
        }
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
    // An auth method at `sys` is accepted, then no other auth method can be
    // mounted: why certplane refuses it.
    assert!(reserved_mount("sys", true).is_some());
    let (status, _) = bao
        .http("POST", "sys/auth/sys", Some(&json!({"type": "approle"})))
        .await;
    assert!(ok(status));
    let (status, reply) = bao
        .http("POST", "sys/auth/later", Some(&json!({"type": "approle"})))
        .await;
    assert!(!ok(status), "{reply}");
    // Nested mounts are refused.
    let (status, _) = bao
        .http(
            "POST",
            "sys/mounts/nest/inner",
            Some(&json!({"type": "pki"})),
        )
        .await;
    assert!(ok(status));
    let (status, reply) = bao
        .http("POST", "sys/mounts/nest", Some(&json!({"type": "pki"})))
        .await;
    assert!(!ok(status), "{reply}");
    bao.post("sys/mounts/outer", &json!({"type": "pki"})).await;
    let (status, reply) = bao
        .http(
            "POST",
            "sys/mounts/outer/inner",
            Some(&json!({"type": "pki"})),
        )
        .await;
    assert!(!ok(status), "{reply}");
}

#[tokio::test]
async fn durations_longer_than_go_holds_are_refused_by_openbao() {
    let bao = OpenBao::start();
    bao.post("sys/mounts/pki", &json!({"type": "pki"})).await;
    let max = Duration::MAX.as_secs();
    let (status, reply) = bao
        .http(
            "POST",
            "pki/roles/max",
            Some(&json!({"ttl": max, "max_ttl": max})),
        )
        .await;
    assert!(ok(status), "{reply}");
    let (status, reply) = bao
        .http("POST", "pki/roles/over", Some(&json!({"max_ttl": max + 1})))
        .await;
    assert!(
        !ok(status) && reply.to_string().contains("overflow"),
        "{reply}"
    );
    let (status, _) = bao
        .http(
            "POST",
            "sys/mounts/pki/tune",
            Some(&json!({"max_lease_ttl": max + 1})),
        )
        .await;
    assert!(!ok(status));
    let (status, _) = bao
        .http(
            "POST",
            "pki/roles/text",
            Some(&json!({"ttl": "999999999h"})),
        )
        .await;
    assert!(!ok(status));
    assert!("999999999h".parse::<Duration>().is_err());
    assert_eq!(
        format!("{}s", max).parse::<Duration>().unwrap(),
        Duration::MAX
    );
    assert!(format!("{}s", max + 1).parse::<Duration>().is_err());
}

/// A CA's ttl beyond the maxLeaseTTL of the mount that signs it is cut
/// short with a mere warning.
#[tokio::test]
async fn openbao_silently_caps_ca_ttls_at_the_signing_mounts_max_lease() {
    let bao = OpenBao::start();
    bao.post(
        "sys/mounts/root",
        &json!({"type": "pki", "config": {"max_lease_ttl": "100h"}}),
    )
    .await;
    bao.post("sys/mounts/int", &json!({"type": "pki"})).await;
    let root = bao
        .post(
            "root/root/generate/internal",
            &json!({"common_name": "r", "ttl": "200h"}),
        )
        .await;
    assert!(
        root["warnings"]
            .to_string()
            .contains("maxTTL is being used"),
        "{root}"
    );
    let csr = bao
        .post(
            "int/intermediate/generate/internal",
            &json!({"common_name": "i"}),
        )
        .await["data"]["csr"]
        .clone();
    let signed = bao
        .post(
            "root/root/sign-intermediate",
            &json!({"csr": csr, "ttl": "150h"}),
        )
        .await;
    assert!(
        signed["warnings"]
            .to_string()
            .contains("maxTTL is being used"),
        "{signed}"
    );
    let d = diagnostics(
        "apiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata: {name: root}\nspec:\n  maxLeaseTTL: 100h\n  ca:\n    root: {commonName: r, ttl: 200h}\n---\napiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata: {name: int}\nspec:\n  ca:\n    intermediate: {commonName: i, ttl: 150h, signedBy: {mount: root}}\n",
    );
    let text: Vec<String> = d.iter().map(ToString::to_string).collect();
    for want in [
        "root CA ttl 200h exceeds",
        "intermediate int ttl 150h exceeds maxLeaseTTL 100h",
    ] {
        assert!(text.iter().any(|t| t.contains(want)), "{want}: {text:#?}");
    }
}

fn openapi_params(spec: &Value, path: &str) -> Vec<String> {
    let r =
        spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("no request body for {path}"));
    let name = r.rsplit('/').next().unwrap();
    let mut keys: Vec<String> = spec["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// The parameter lists `extra` keys are checked against are OpenBao's; an
/// unknown parameter is ignored by OpenBao (so it would never read back).
#[tokio::test]
async fn extra_parameter_lists_are_openbaos() {
    let bao = OpenBao::start();
    bao.post("sys/mounts/pki", &json!({"type": "pki"})).await;
    let (status, spec) = bao.http("GET", "sys/internal/specs/openapi", None).await;
    assert!(ok(status));
    let sorted = |l: &[&str]| {
        let mut v: Vec<String> = l.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(
        sorted(ROLE_PARAMS),
        openapi_params(&spec, "/pki/roles/{name}")
    );
    assert_eq!(
        sorted(ROOT_PARAMS),
        openapi_params(&spec, "/pki/issuers/generate/root/{exported}")
    );
    assert_eq!(
        sorted(INTERMEDIATE_PARAMS),
        openapi_params(&spec, "/pki/issuers/generate/intermediate/{exported}")
    );
    let reply = bao
        .post("pki/roles/web", &json!({"enforce_hostname": false}))
        .await;
    assert!(
        reply["warnings"].to_string().contains("enforce_hostname"),
        "{reply}"
    );
    let role = bao.get_data("pki/roles/web").await.unwrap();
    assert!(role.get("enforce_hostname").is_none());
}

/// Kubernetes auth configs: what OpenBao (not running in a pod) refuses,
/// and what certplane says of the same config.
#[tokio::test]
async fn kubernetes_auth_config_ca_rules_follow_openbao() {
    let bao = OpenBao::start();
    bao.post("sys/auth/kubernetes", &json!({"type": "kubernetes"}))
        .await;
    let ca = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/homelab/ca/k8s-ca.pem"),
    )
    .unwrap();
    let cases = [
        (
            json!({"kubernetes_host": "https://kubernetes.default.svc", "disable_local_ca_jwt": true}),
            "    host: https://kubernetes.default.svc\n    disableLocalCaJwt: true\n",
            Some("without a caCertFile"),
        ),
        (
            json!({"kubernetes_host": "https://k8s.example.com:6443"}),
            "    host: https://k8s.example.com:6443\n",
            Some("is not the in-cluster API address"),
        ),
        (
            json!({"kubernetes_host": "https://k8s.example.com:6443", "kubernetes_ca_cert": ca, "disable_local_ca_jwt": true}),
            "    host: https://k8s.example.com:6443\n    caCertFile: ca.pem\n    disableLocalCaJwt: true\n",
            None,
        ),
    ];
    for (body, yaml, want) in cases {
        let (status, reply) = bao
            .http("POST", "auth/kubernetes/config", Some(&body))
            .await;
        assert_eq!(ok(status), want.is_none(), "{body}: {status} {reply}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca).unwrap();
        std::fs::write(
            dir.path().join("auth.yaml"),
            // A reviewer is required too; these cases are about the CA.
            format!("apiVersion: certplane.dev/v1alpha1\nkind: AuthMount\nmetadata: {{name: kubernetes}}\nspec:\n  type: kubernetes\n  kubernetes:\n{yaml}    tokenReviewerJwtFrom: {{value: reviewer-jwt}}\n"),
        )
        .unwrap();
        let repo = certplane::load::load(dir.path()).unwrap();
        let d = certplane::validate::validate(&repo);
        match want {
            Some(w) => assert!(d.iter().any(|d| d.message.contains(w)), "{w}: {d:?}"),
            None => assert!(d.is_empty(), "{d:?}"),
        }
    }
}

/// A mount made by hand that the repository does not declare: only the
/// live Vault can tell that a declared mount lies inside it. `apply` stops
/// at the plan, before any write (the audit log shows none).
#[test]
fn a_mount_inside_a_live_mount_stops_apply_before_any_write() {
    let bao = OpenBao::start_with_audit();
    bao.bao_ok(&["secrets", "enable", "-path=pki", "pki"]);
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("pki.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: Policy\nmetadata: {name: first}\nspec:\n  rules: [{path: pki/int/sign/web, capabilities: [update]}]\n---\napiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata: {name: pki/int}\nspec: {}\n",
    )
    .unwrap();
    let path = repo.path().to_str().unwrap();
    // Offline it is valid: nothing in the repository says pki/ exists.
    common::certplane_root(&bao, &["validate", path]).expect(0);
    let before = bao.audit_entries().len();
    let run = common::certplane_root(&bao, &["apply", path, "--auto-approve"]);
    run.expect(1);
    assert!(
        run.both().contains("Vault already has a mount at pki/"),
        "{}",
        run.both()
    );
    assert_eq!(common::writes_since(&bao, before), vec![]);
}
