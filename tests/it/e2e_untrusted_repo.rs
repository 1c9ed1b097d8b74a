//! End to end, against a real OpenBao: what a hostile commit could make
//! certplane do, measured before the fix, and now refused before any
//! request.
//!
//! - `certplane.yaml` naming another Vault while the operator gave
//!   `VAULT_ADDR`: `plan`, `apply` and `validate --live` exit 1 at
//!   certplane.yaml:line; the other address never sees a connection, and
//!   the operator's Vault no request.
//! - Value sources reading the process's secrets: `caBundleFrom: {env:
//!   VAULT_TOKEN}` (was: base64 in the rendered ClusterIssuer and in the
//!   `plan --out` file), `caBundleFrom: {file: /etc/passwd}`, and
//!   `tokenReviewerJwtFrom: {env: VAULT_TOKEN}` (was: sent to Vault, which
//!   then gave it to the attacker's `host:` as a bearer token). Nothing is
//!   rendered, no plan file written, no request sent. The same repository
//!   with variables the operator allows does render and send them (the
//!   checks can see a leak), and the operator's token appears in no request
//!   body, rendered file or plan file.

use std::path::Path;

use crate::common::*;

/// Every file under `dir` (none when it does not exist), as text.
fn files_text(dir: &Path) -> String {
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.push_str(&files_text(&p));
        } else {
            out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
    out
}

#[test]
fn a_config_naming_another_vault_is_refused_before_any_request() {
    let bao = OpenBao::start_with_audit();
    let decoy = Decoy::start();
    let repo = tempfile::tempdir().unwrap();
    copy_dir(&homelab(), repo.path());
    std::fs::write(
        repo.path().join("certplane.yaml"),
        format!(
            "apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec:\n  vault:\n    address: {}\n",
            decoy.addr()
        ),
    )
    .unwrap();
    let dir = repo.path().to_str().unwrap();
    let mark = bao.audit_entries().len();
    for args in [
        vec!["plan", dir],
        vec!["apply", "--auto-approve", dir],
        vec!["validate", "--live", dir],
    ] {
        let run = certplane_root(&bao, &args);
        run.expect(1);
        assert!(
            run.stderr.contains("certplane.yaml:5:")
                && run
                    .stderr
                    .contains("differs from the Vault address the operator set")
                && run.stderr.contains("VAULT_ADDR"),
            "{args:?}\n{}",
            run.both()
        );
    }
    // The same with the flag instead of the variable.
    let flag = certplane(
        &["plan", "--vault-addr", &bao.addr(), dir],
        &[("VAULT_TOKEN", bao.token())],
        bao.dir(),
    );
    flag.expect(1);
    assert!(flag.stderr.contains("--vault-addr"), "{}", flag.both());
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(decoy.requests(), Vec::<String>::new());
    assert_eq!(bao.audit_entries().len(), mark, "a request reached Vault");

    // Local convenience: when the operator names no Vault, the repository's
    // address is used.
    std::fs::write(
        repo.path().join("certplane.yaml"),
        format!(
            "apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec:\n  vault:\n    address: {}\n",
            bao.addr()
        ),
    )
    .unwrap();
    certplane(&["plan", dir], &[("VAULT_TOKEN", bao.token())], bao.dir()).expect(2);
}

#[test]
fn sources_cannot_read_the_process_secrets() {
    let bao = OpenBao::start_with_raw_audit();
    let decoy = Decoy::start();
    // A distinctive token with root rights, the operator's.
    let token = format!("certplane-operator-token-{}", std::process::id());
    bao.bao_ok(&["token", "create", "-id", &token, "-policy=root", "-ttl=1h"]);
    // Requests from here on are certplane's.
    let bodies_before = bao.audit_request_bodies().len();
    let addr = bao.addr();
    let work = tempfile::tempdir().unwrap();
    let rendered = work.path().join("rendered");
    let plan_file = work.path().join("plan.json");

    // The hostile commit.
    let hostile = tempfile::tempdir().unwrap();
    copy_dir(&homelab(), hostile.path());
    edit(
        hostile.path(),
        "issuer.yaml",
        "  server: http://127.0.0.1:8200\n",
        "  server: http://127.0.0.1:8200\n  caBundleFrom: {env: VAULT_TOKEN}\n",
    );
    edit(
        hostile.path(),
        "auth.yaml",
        "    host: https://kubernetes.default.svc\n",
        &format!(
            "    host: {}\n    tokenReviewerJwtFrom: {{env: VAULT_TOKEN}}\n",
            decoy.addr()
        ),
    );
    std::fs::write(
        hostile.path().join("passwd.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: VaultIssuer\nmetadata: {name: passwd, namespace: cert-manager}\nspec:\n  server: http://127.0.0.1:8200\n  caBundleFrom: {file: /etc/passwd}\n  role: {mount: pki_int, name: homelab-dot-local}\n  auth:\n    kubernetes: {mount: kubernetes}\n",
    )
    .unwrap();
    let env = [
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_TOKEN", token.as_str()),
    ];
    let mark = bao.audit_entries().len();
    let dir = hostile.path().to_str().unwrap();
    let render = rendered.to_str().unwrap();
    let out = plan_file.to_str().unwrap();
    for args in [
        vec!["plan", "--render", render, "--out", out, dir],
        vec!["plan", "-o", "json", "--render", render, dir],
        vec!["apply", "--auto-approve", "--render", render, dir],
        // Allowing every variable does not hand over the process's own.
        vec![
            "--allow-env",
            "*",
            "plan",
            "--render",
            render,
            "--out",
            out,
            dir,
        ],
    ] {
        let run = certplane(&args, &env, bao.dir());
        run.expect(1);
        for want in [
            "issuer.yaml:12:",
            "env source VAULT_TOKEN may not be read",
            "auth.yaml:20:",
            "passwd.yaml:6:",
            "/etc/passwd is outside the repository",
        ] {
            assert!(
                run.stderr.contains(want),
                "{args:?}: {want}\n{}",
                run.both()
            );
        }
        assert!(!run.both().contains(&token), "{args:?} printed the token");
        assert!(
            !run.both().contains("root:x:0:0"),
            "{args:?} printed /etc/passwd"
        );
    }
    assert!(files_text(&rendered).is_empty(), "something was rendered");
    assert!(!plan_file.exists(), "a plan file was written");
    assert_eq!(bao.audit_entries().len(), mark, "a request reached Vault");
    assert!(decoy.requests().is_empty());

    // The same shapes with variables the operator allows: the values do
    // reach the rendered Issuer and Vault (so the checks above would have
    // seen a leak), and the operator's token still reaches neither.
    let allowed = tempfile::tempdir().unwrap();
    copy_dir(&homelab(), allowed.path());
    edit(
        allowed.path(),
        "issuer.yaml",
        "  server: http://127.0.0.1:8200\n",
        "  server: http://127.0.0.1:8200\n  caBundleFrom: {env: CERTPLANE_VAR_VAULT_CA}\n",
    );
    edit(
        allowed.path(),
        "auth.yaml",
        "    tokenReviewer:\n      serviceAccount: {namespace: vault-auth, name: vault-token-reviewer}\n",
        "    tokenReviewerJwtFrom: {env: REVIEWER_JWT}\n",
    );
    let ca_marker = "allowed-ca-bundle-value";
    let jwt_marker = "allowed-reviewer-jwt-value";
    let env = [
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_TOKEN", token.as_str()),
        ("CERTPLANE_VAR_VAULT_CA", ca_marker),
        ("REVIEWER_JWT", jwt_marker),
    ];
    let dir = allowed.path().to_str().unwrap();
    let refused = certplane(&["plan", "--render", render, dir], &env, bao.dir());
    refused.expect(1);
    assert!(
        refused.stderr.contains("--allow-env REVIEWER_JWT"),
        "{}",
        refused.both()
    );
    certplane(
        &[
            "--allow-env",
            "REVIEWER_JWT",
            "plan",
            "--render",
            render,
            "--out",
            out,
            dir,
        ],
        &env,
        bao.dir(),
    )
    .expect(2);
    certplane(
        &[
            "apply",
            "--auto-approve",
            "--allow-env",
            "REVIEWER_JWT",
            "--render",
            render,
            dir,
        ],
        &env,
        bao.dir(),
    )
    .expect(0);
    use base64::Engine as _;
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(ca_marker);
    let rendered_text = files_text(&rendered);
    assert!(rendered_text.contains(&ca_b64), "{rendered_text}");
    let bodies = serde_json::to_string(&bao.audit_request_bodies()[bodies_before..]).unwrap();
    assert!(bodies.contains(jwt_marker), "the reviewer JWT was not sent");
    let plan_text = std::fs::read_to_string(&plan_file).unwrap();
    assert!(
        !plan_text.contains(jwt_marker),
        "the plan file holds the JWT"
    );
    for (what, text) in [
        ("a request body", &bodies),
        ("the rendered files", &rendered_text),
        ("the plan file", &plan_text),
    ] {
        assert!(!text.contains(&token), "the operator's token is in {what}");
    }
}
