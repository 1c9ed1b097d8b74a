//! `certplane policy`: the printed policy is exactly enough. A token holding
//! only that policy (not even `default`) applies `examples/homelab` to a real
//! OpenBao and the next plan is clean; a token whose policy lacks one path
//! fails with a message naming that path. And `deploy/vault-policy.hcl` is
//! the policy of `examples/homelab`, not a stale copy.

use crate::common::*;

fn token_with(bao: &OpenBao, name: &str, hcl: &str) -> String {
    let file = bao.dir().join(format!("{name}.hcl"));
    std::fs::write(&file, hcl).unwrap();
    bao.bao_ok(&["policy", "write", name, file.to_str().unwrap()]);
    bao.bao_ok(&[
        "token",
        "create",
        "-no-default-policy",
        &format!("-policy={name}"),
        "-field=token",
    ])
    .trim()
    .to_string()
}

fn as_token(bao: &OpenBao, token: &str, args: &[&str]) -> Run {
    certplane_as(&bao.addr(), token, bao.dir(), args)
}

/// The policy without the `path "<path>" { ... }` block.
fn without(hcl: &str, path: &str) -> String {
    let head = format!("path \"{path}\" {{");
    let start = hcl
        .find(&head)
        .unwrap_or_else(|| panic!("{path} in\n{hcl}"));
    let end = start + hcl[start..].find("}\n").unwrap() + 2;
    format!("{}{}", &hcl[..start], &hcl[end..])
}

#[test]
fn a_token_with_exactly_the_policy_applies_homelab() {
    let bao = OpenBao::start();
    let dir = homelab();
    let dir = dir.to_str().unwrap();
    let render = bao.dir().join("rendered");
    let render = render.to_str().unwrap();

    let printed = certplane(&["policy", dir], &[], bao.dir());
    printed.expect(0);
    let hcl = printed.stdout.clone();
    assert!(hcl.contains("path \"sys/mounts/pki_int\""), "{hcl}");
    assert!(!hcl.contains("\"*\""), "no wildcard capability: {hcl}");

    let token = token_with(&bao, "certplane", &hcl);
    as_token(
        &bao,
        &token,
        &["apply", "--auto-approve", "--render", render, dir],
    )
    .expect(0);
    let again = as_token(&bao, &token, &["plan", "--render", render, dir]);
    again.expect(0);
    assert!(again.stdout.contains("No changes"), "{}", again.both());

    // One read path missing: plan fails and says which path.
    let lacking = without(&hcl, "pki_int/roles/homelab-dot-local");
    let token = token_with(&bao, "certplane-lacking", &lacking);
    let run = as_token(&bao, &token, &["plan", "--render", render, dir]);
    run.expect(1);
    assert!(
        run.stderr.contains("pki_int/roles/homelab-dot-local"),
        "{}",
        run.both()
    );
    assert!(
        run.stderr.contains("permission denied") || run.stderr.contains("403"),
        "{}",
        run.both()
    );
}

#[test]
fn a_token_lacking_a_write_path_fails_naming_it() {
    let bao = OpenBao::start();
    let dir = homelab();
    let dir = dir.to_str().unwrap();
    let render = bao.dir().join("rendered");
    let render = render.to_str().unwrap();
    let hcl = certplane(&["policy", dir], &[], bao.dir()).stdout;
    let lacking = without(&hcl, "pki_int/intermediate/set-signed");
    let token = token_with(&bao, "certplane-lacking", &lacking);
    let run = as_token(
        &bao,
        &token,
        &["apply", "--auto-approve", "--render", render, dir],
    );
    run.expect(1);
    assert!(
        run.stderr.contains("pki_int/intermediate/set-signed"),
        "{}",
        run.both()
    );
}

#[test]
fn deploy_vault_policy_is_not_stale() {
    let tmp = tempfile::tempdir().unwrap();
    let printed = certplane(&["policy", homelab().to_str().unwrap()], &[], tmp.path());
    printed.expect(0);
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/vault-policy.hcl"),
    )
    .expect("deploy/vault-policy.hcl");
    assert_eq!(
        committed, printed.stdout,
        "deploy/vault-policy.hcl is stale: run `certplane policy examples/homelab > deploy/vault-policy.hcl`"
    );
}
