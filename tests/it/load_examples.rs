//! Every directory under `examples/` loads, expands and validates with no
//! diagnostic.

use std::path::PathBuf;

use certplane::model::VaultObject;

fn examples() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        // examples/ci holds CI workflows, not a repository.
        .filter(|p| p.is_dir() && !p.ends_with("ci"))
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_example_loads_and_validates() {
    let dirs = examples();
    assert!(!dirs.is_empty(), "no example directories");
    for dir in dirs {
        let mut repo =
            certplane::load::load(&dir).unwrap_or_else(|e| panic!("{}:\n{e}", dir.display()));
        assert!(
            !(repo.vault.is_empty() && repo.manifests.is_empty() && repo.vault_issuers.is_empty()),
            "{}: no objects",
            dir.display()
        );
        // As the pipeline does: VaultIssuers expand before validation.
        certplane::expand::expand(&mut repo).unwrap_or_else(|e| panic!("{}:\n{e}", dir.display()));
        let diags = certplane::validate::validate(&repo);
        assert!(
            diags.is_empty(),
            "{}:\n{}",
            dir.display(),
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn homelab_declares_the_whole_flow() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/homelab");
    let repo = certplane::load::load(&dir).unwrap();
    let kinds: Vec<(&str, &str)> = repo
        .vault
        .iter()
        .map(|o| (o.spec.kind(), o.meta.name.as_str()))
        .collect();
    for want in [
        ("PkiMount", "pki"),
        ("PkiMount", "pki_int"),
        ("PkiRole", "homelab-dot-local"),
        ("AuthMount", "kubernetes"),
    ] {
        assert!(kinds.contains(&want), "{want:?} missing from {kinds:?}");
    }
    // One design: the Vault role and policy cert-manager uses are the
    // VaultIssuer's, not written by hand beside it.
    for kind in ["Policy", "KubernetesAuthRole", "AppRole"] {
        assert!(
            !kinds.iter().any(|(k, _)| *k == kind),
            "a hand-written {kind} in {kinds:?}"
        );
    }
    assert_eq!(repo.vault_issuers.len(), 1);
    let mut expanded = repo.clone();
    certplane::expand::expand(&mut expanded).unwrap();
    let mut made: Vec<(&str, &str)> = expanded
        .vault
        .iter()
        .map(|o| (o.spec.kind(), o.meta.name.as_str()))
        .filter(|(k, _)| ["Policy", "KubernetesAuthRole"].contains(k))
        .collect();
    made.sort();
    assert_eq!(
        made,
        vec![("KubernetesAuthRole", "homelab"), ("Policy", "homelab")]
    );
    let (_, _, role) = repo.pki_roles().next().unwrap();
    assert_eq!(role.mount, "pki_int");
    assert_eq!(role.max_ttl.unwrap().as_secs(), 24 * 3600);
    let intermediate = repo
        .vault
        .iter()
        .find(|o| o.meta.name == "pki_int")
        .unwrap();
    let VaultObject::PkiMount(spec) = &intermediate.spec else {
        panic!("pki_int is not a PkiMount");
    };
    assert!(matches!(
        &spec.ca,
        Some(certplane::model::CaSpec::Intermediate(i))
            if i.signed_by == certplane::model::SignedBy::Mount("pki".into())
    ));
    // Positions point into the files.
    let at = intermediate
        .origin
        .at("spec.ca.intermediate.signedBy.mount");
    assert!(at.file.ends_with("pki.yaml"));
    assert!(at.line > intermediate.origin.line);
}

/// On a real cluster an object in a namespace that does not exist is
/// refused: every example declares the namespaces it puts objects in
/// (including those of the objects a VaultIssuer or a token reviewer
/// expands into). `cert-manager` is cert-manager's own namespace, which
/// exists wherever cert-manager runs.
#[test]
fn every_example_declares_its_namespaces() {
    for dir in examples() {
        let mut repo = certplane::load::load(&dir).unwrap();
        certplane::expand::expand(&mut repo).unwrap();
        let declared: Vec<&str> = repo
            .manifests
            .iter()
            .filter(|m| m.spec["kind"] == "Namespace" && m.spec["apiVersion"] == "v1")
            .filter_map(|m| m.spec["metadata"]["name"].as_str())
            .collect();
        let mut used: Vec<&str> =
            repo.manifests
                .iter()
                .filter_map(|m| m.spec["metadata"]["namespace"].as_str())
                .chain(repo.app_roles().filter_map(|(_, _, a)| {
                    a.deliver_to.as_ref().map(|d| d.secret.namespace.as_str())
                }))
                .collect();
        used.sort();
        used.dedup();
        for ns in used {
            assert!(
                ns == "cert-manager" || declared.contains(&ns),
                "{}: objects in namespace {ns}, which the example does not declare",
                dir.display()
            );
        }
    }
}

/// Every Kubernetes auth mount of the examples names its token reviewer.
#[test]
fn every_kubernetes_auth_mount_of_the_examples_has_a_reviewer() {
    let mut seen = 0;
    for dir in examples() {
        let repo = certplane::load::load(&dir).unwrap();
        for (meta, _, m) in repo.auth_mounts() {
            if let Some(k) = &m.kubernetes {
                seen += 1;
                assert!(
                    matches!(
                        k.token_reviewer,
                        Some(certplane::model::TokenReviewer::ServiceAccount(_))
                    ),
                    "{}: auth mount {} has no reviewer ServiceAccount",
                    dir.display(),
                    meta.name
                );
            }
        }
    }
    assert_eq!(seen, 3, "homelab, vault-kubernetes-static and -secretless");
}
