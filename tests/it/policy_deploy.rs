//! `deploy/`: every manifest parses, the ClusterRole grants no wildcard,
//! the Deployment runs as non-root with a read-only root file system and
//! probes, and its arguments are a valid `certplane run` command line that
//! names the Vault and the kubernetes login itself.
//! (`deploy/vault-policy.hcl` is checked against `certplane policy` in
//! `tests/policy_homelab.rs`.)

use std::path::Path;

use clap::Parser;
use serde_json::Value;

fn deploy() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every document of every YAML file of deploy/.
fn documents() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(deploy())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, doc) in text.split("\n---\n").enumerate() {
            let v: Value = serde_saphyr::from_str(doc)
                .unwrap_or_else(|e| panic!("{} document {i}: {e}", f.display()));
            assert!(v.get("kind").is_some(), "{}: no kind", f.display());
            out.push((f.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out
}

fn of_kind(kind: &str) -> Vec<Value> {
    documents()
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v["kind"] == kind)
        .collect()
}

#[test]
fn every_manifest_parses_and_names_its_namespace() {
    for (file, v) in documents() {
        let kind = v["kind"].as_str().unwrap();
        if matches!(
            kind,
            "ServiceAccount" | "Deployment" | "Role" | "RoleBinding"
        ) {
            assert_eq!(
                v["metadata"]["namespace"], "certplane-system",
                "{file}: {kind}"
            );
        }
    }
    assert_eq!(
        of_kind("Namespace")[0]["metadata"]["name"],
        "certplane-system"
    );
}

#[test]
fn rbac_has_no_wildcards_and_only_managed_kinds() {
    let roles: Vec<Value> = of_kind("ClusterRole")
        .into_iter()
        .chain(of_kind("Role"))
        .collect();
    assert_eq!(roles.len(), 2);
    let allowed = [
        "issuers",
        "clusterissuers",
        "certificates",
        "secrets",
        "serviceaccounts",
        "serviceaccounts/token",
        "roles",
        "rolebindings",
        "configmaps",
        "leases",
        "namespaces",
        // A token reviewer's binding to system:auth-delegator, and what
        // certplane must hold itself to grant it.
        "clusterrolebindings",
        "tokenreviews",
        "subjectaccessreviews",
    ];
    for role in roles {
        for rule in role["rules"].as_array().unwrap() {
            for key in ["verbs", "resources", "apiGroups"] {
                for x in rule[key].as_array().unwrap() {
                    assert_ne!(x, "*", "a wildcard in {key}: {rule}");
                }
            }
            for r in rule["resources"].as_array().unwrap() {
                assert!(allowed.contains(&r.as_str().unwrap()), "{r} in {rule}");
            }
            for v in rule["verbs"].as_array().unwrap() {
                assert!(
                    !matches!(v.as_str().unwrap(), "escalate" | "bind" | "impersonate"),
                    "{v} in {rule}"
                );
            }
            let res: Vec<&str> = rule["resources"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if res.contains(&"configmaps") || res.contains(&"leases") {
                assert_eq!(role["kind"], "Role", "namespaced only: {rule}");
            }
        }
    }
}

#[test]
fn deployment_is_locked_down_and_runs_a_valid_command() {
    let d = &of_kind("Deployment")[0];
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "certplane");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["resources"]["requests"].is_object());
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "run");
    let parsed = certplane::cli::Cli::try_parse_from(std::iter::once("certplane").chain(args));
    assert!(parsed.is_ok(), "{}", parsed.as_ref().unwrap_err());
    // The Vault connection and login are the Deployment's own: kubernetes
    // auth with the pod's service account token, nothing from the repository.
    let none = |_: &str| None;
    let env = certplane::vault::connect::Env {
        var: &none,
        home: None,
    };
    let op = parsed.unwrap().operator.operator(true, &env).unwrap();
    assert_eq!(
        op.vault.address.as_ref().map(|a| a.value.as_str()),
        Some("https://vault.vault.svc:8200")
    );
    assert_eq!(
        op.vault.auth.map(|a| a.value),
        Some(certplane::vault::AuthSettings::Kubernetes {
            mount: "kubernetes".into(),
            role: "certplane".into(),
            jwt: certplane::model::Source::File(certplane::vault::connect::POD_TOKEN_FILE.into()),
        })
    );
}
