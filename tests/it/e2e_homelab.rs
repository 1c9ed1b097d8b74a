//! End to end: `examples/homelab` applied by the `certplane` binary to a real
//! OpenBao, then the live state checked with plain HTTP: mounts and TTLs, the
//! intermediate's signature by the root, the role, the policy, the
//! Kubernetes auth role, a leaf issued (and one refused), and a clean re-plan.

use crate::common::*;
use certplane::pki::x509::{is_signed_by, parse_pem};
use serde_json::{Value, json};

fn str_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Value::String(s) if !s.is_empty() => s.split(',').map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn homelab_applies_then_converges() {
    let bao = OpenBao::start();
    let dir = homelab();
    let dir = dir.to_str().unwrap();

    // Empty OpenBao: everything is to create.
    let first = certplane_root(&bao, &["plan", dir]);
    first.expect(2);
    assert!(first.stdout.contains("pki_int"), "{}", first.both());

    certplane_root(&bao, &["apply", "--auto-approve", dir]).expect(0);

    // The cluster half was rendered for Flux/Argo: the expanded VaultIssuer.
    let issuer = std::fs::read_to_string(
        bao.dir()
            .join("rendered/_cluster/clusterissuer.cert-manager.io-homelab.yaml"),
    )
    .expect("the ClusterIssuer is rendered");
    assert!(
        issuer.contains("path: pki_int/sign/homelab-dot-local"),
        "{issuer}"
    );
    assert!(issuer.contains("name: homelab"), "{issuer}");
    let role = read(&bao, "auth/kubernetes/role/homelab").expect("the expanded auth role");
    assert_eq!(role["audience"], json!("vault://homelab"));
    assert_eq!(
        role["bound_service_account_namespaces"],
        json!(["cert-manager"])
    );

    // Mounts and their TTLs.
    for (mount, max_lease) in [("pki", 87600 * 3600), ("pki_int", 43800 * 3600)] {
        let tune = read(&bao, &format!("sys/mounts/{mount}/tune"))
            .unwrap_or_else(|| panic!("mount {mount} missing"));
        assert_eq!(tune["max_lease_ttl"], json!(max_lease), "{mount}: {tune}");
    }
    let mounts = read(&bao, "sys/mounts").unwrap();
    assert_eq!(mounts["pki/"]["type"], "pki", "{mounts}");
    assert_eq!(mounts["pki_int/"]["type"], "pki", "{mounts}");

    // The intermediate chains to the root: checked by signature.
    let root_pem = default_issuer_pem(&bao, "pki");
    let int_pem = default_issuer_pem(&bao, "pki_int");
    let root = parse_pem(&root_pem).unwrap();
    let int = parse_pem(&int_pem).unwrap();
    assert!(root.is_ca && int.is_ca);
    assert!(
        is_signed_by(&root.der, &root.der),
        "the root is self-signed"
    );
    assert!(
        is_signed_by(&int.der, &root.der),
        "pki_int's issuer must be signed by pki's"
    );
    assert_ne!(int.der, root.der);
    assert_eq!(int.issued_by, root.common_name);

    // The role.
    let role = read(&bao, "pki_int/roles/homelab-dot-local").expect("role exists");
    assert_eq!(
        str_list(&role["allowed_domains"]),
        vec!["homelab.local"],
        "{role}"
    );
    assert_eq!(role["allow_subdomains"], json!(true), "{role}");
    assert_eq!(role["max_ttl"], json!(86400), "{role}");

    // The VaultIssuer's policy allows update on the sign path, and nothing
    // else of the example's (one design: no hand-written policy or role).
    let policy = read(&bao, "sys/policies/acl/homelab").expect("policy exists");
    let text = policy["policy"].as_str().unwrap_or_default();
    assert!(
        text.contains("pki_int/sign/homelab-dot-local") && text.contains("update"),
        "{text}"
    );
    assert!(read(&bao, "sys/policies/acl/pki-int-issuer").is_none());

    // Kubernetes auth: the mount and the VaultIssuer's role, bound to the
    // ClusterIssuer's service account cert-manager/homelab, audience
    // vault://homelab, with its policy.
    let auths = read(&bao, "sys/auth").unwrap();
    assert_eq!(auths["kubernetes/"]["type"], "kubernetes", "{auths}");
    let k8s = read(&bao, "auth/kubernetes/role/homelab").expect("kubernetes role exists");
    assert_eq!(
        str_list(&k8s["bound_service_account_names"]),
        vec!["homelab"]
    );
    assert_eq!(
        str_list(&k8s["bound_service_account_namespaces"]),
        vec!["cert-manager"]
    );
    assert_eq!(k8s["audience"], "vault://homelab", "{k8s}");
    assert_eq!(str_list(&k8s["token_policies"]), vec!["homelab"], "{k8s}");
    assert!(read(&bao, "auth/kubernetes/role/issuer").is_none());

    // A leaf for a subdomain is issued by the intermediate; another name is refused.
    let (status, reply) = post(
        &bao,
        "pki_int/issue/homelab-dot-local",
        &json!({"common_name": "a.homelab.local", "ttl": "1h", "key_type": "ec", "key_bits": 256}),
    );
    assert_eq!(status, 200, "{reply}");
    let leaf = parse_pem(reply["data"]["certificate"].as_str().unwrap()).unwrap();
    assert_eq!(leaf.common_name, "a.homelab.local");
    assert!(!leaf.is_ca);
    assert!(is_signed_by(&leaf.der, &int.der));
    let (status, reply) = post(
        &bao,
        "pki_int/issue/homelab-dot-local",
        &json!({"common_name": "evil.example.com", "ttl": "1h", "key_type": "ec", "key_bits": 256}),
    );
    assert_eq!(
        status, 400,
        "a name outside homelab.local must be refused: {reply}"
    );
    // Longer than the role's maxTTL (24h): capped, never longer.
    let (status, reply) = post(
        &bao,
        "pki_int/issue/homelab-dot-local",
        &json!({"common_name": "b.homelab.local", "ttl": "72h", "key_type": "ec", "key_bits": 256}),
    );
    if status == 200 {
        let leaf = parse_pem(reply["data"]["certificate"].as_str().unwrap()).unwrap();
        assert!(leaf.not_after - leaf.not_before <= 86400 + 60, "{leaf:?}");
    }

    // Converged: the next plan is empty, for people and for machines.
    let again = certplane_root(&bao, &["plan", dir]);
    again.expect(0);
    assert!(again.stdout.contains("No changes"), "{}", again.both());
    let json_run = certplane_root(&bao, &["plan", "-o", "json", dir]);
    json_run.expect(0);
    let plan = json_plan(&json_run);
    assert_eq!(plan["has_changes"], json!(false), "{plan}");
    let changes = plan["changes"].as_array().expect("changes array");
    assert!(
        !changes.is_empty(),
        "every declared object is listed: {plan}"
    );
    assert!(changes.iter().all(|c| c["action"] == "no_op"), "{plan}");
    assert!(
        changes
            .iter()
            .any(|c| c["address"] == "cert-manager.io/ClusterIssuer/homelab"),
        "the rendered cluster half is part of the plan: {plan}"
    );
    assert!(
        changes
            .iter()
            .any(|c| c["address"] == "vault:pki_int/roles/homelab-dot-local"),
        "{plan}"
    );
}
