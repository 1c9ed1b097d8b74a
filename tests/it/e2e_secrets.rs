//! End to end: with trace logging on, no secret of the run reaches stdout,
//! stderr or the JSON plan: not the Vault token, not the AppRole secret ID,
//! not a token Vault hands out, not a private key (an external signer's key,
//! an imported bundle's key), as a PEM block or as its base64 body.

use crate::common::*;

/// Token-looking words: `hvs.`/`s.` (and batch/recovery) followed by a long
/// run of token characters, as Vault and OpenBao make them.
fn token_like(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for prefix in ["hvs.", "hvb.", "hvr.", "s.", "b.", "r."] {
        let mut from = 0;
        while let Some(i) = text[from..].find(prefix) {
            let start = from + i;
            from = start + prefix.len();
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'.') {
                continue;
            }
            let body: String = text[from..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            if body.len() >= 20 {
                found.push(format!("{prefix}{body}"));
            }
        }
    }
    found
}

#[test]
fn token_like_finds_tokens_only() {
    assert_eq!(
        token_like("x hvs.CAESIJ1yo8Mxr2C9Kqq4Xg1vzEnO y"),
        vec!["hvs.CAESIJ1yo8Mxr2C9Kqq4Xg1vzEnO"]
    );
    assert_eq!(token_like("(s.AbCdEfGhIjKlMnOpQrStUvWx)").len(), 1);
    assert!(token_like("certs.example.com issuer.pem s.short").is_empty());
}

#[test]
fn trace_logs_and_plans_carry_no_secret() {
    let bao = OpenBao::start_with_audit();
    let (role_id, secret_id) = approle_for_certplane(&bao);
    // A distinctive token with root rights, for the token-auth runs.
    let token = format!("certplane-root-token-{}", std::process::id());
    bao.bao_ok(&["token", "create", "-id", &token, "-policy=root", "-ttl=1h"]);

    // The keys stay outside the repository: the operator hands them over in
    // variables the repository may read (CERTPLANE_VAR_*).
    let (import_pem, import_key) = rcgen_ca("Secrets Import Root");
    let bundle = format!("{import_pem}{import_key}");
    let (ext_pem, ext_key) = rcgen_ca("Secrets External Root");

    let repo = tempfile::tempdir().unwrap();
    copy_dir(&homelab(), repo.path());
    write(repo.path(), "extra/external-root.pem", &ext_pem);
    write(
        repo.path(),
        "extra/flows.yaml",
        "apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: imported}
spec:
  maxLeaseTTL: 87600h
  ca:
    import:
      pemBundleFrom: {env: CERTPLANE_VAR_IMPORT_BUNDLE}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: external_int}
spec:
  maxLeaseTTL: 8760h
  ca:
    intermediate:
      commonName: Secrets External Intermediate
      keyType: ec
      keyBits: 256
      ttl: 17520h
      signedBy:
        external:
          caCertFile: external-root.pem
          caKeyFrom: {env: CERTPLANE_VAR_EXTERNAL_KEY}
",
    );
    // One repository (one identity: named, since the two copies below live
    // in directories of different names)...
    write(
        repo.path(),
        "certplane.yaml",
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nmetadata: {name: homelab}\nspec: {}\n",
    );
    // ...once with AppRole login from certplane.yaml...
    let approle_repo = tempfile::tempdir().unwrap();
    copy_dir(repo.path(), approle_repo.path());
    write_approle_config(approle_repo.path(), &bao.addr(), &role_id);
    let approle_dir = approle_repo.path().to_str().unwrap();
    let token_dir = repo.path().to_str().unwrap();
    let addr = bao.addr();
    let approle_env = [
        ("CERTPLANE_SECRET_ID", secret_id.as_str()),
        ("CERTPLANE_ALLOW_ENV", "CERTPLANE_SECRET_ID"),
        ("CERTPLANE_VAR_IMPORT_BUNDLE", bundle.as_str()),
        ("CERTPLANE_VAR_EXTERNAL_KEY", ext_key.as_str()),
        ("CERTPLANE_LOG", "trace"),
    ];
    // ...and once with the token in the environment.
    let token_env = [
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_TOKEN", token.as_str()),
        ("CERTPLANE_VAR_IMPORT_BUNDLE", bundle.as_str()),
        ("CERTPLANE_VAR_EXTERNAL_KEY", ext_key.as_str()),
        ("CERTPLANE_LOG", "trace"),
    ];

    let mut runs = vec![
        certplane(&["plan", "-vvv", approle_dir], &approle_env, bao.dir()),
        certplane(
            &["plan", "-vvv", "-o", "json", approle_dir],
            &approle_env,
            bao.dir(),
        ),
        certplane(&["plan", "-vvv", token_dir], &token_env, bao.dir()),
    ];
    for r in &runs {
        r.expect(2);
    }
    json_plan(&runs[1]);
    let apply = certplane(
        &[
            "apply",
            "--auto-approve",
            "-vvv",
            "--log-format",
            "json",
            approle_dir,
        ],
        &approle_env,
        bao.dir(),
    );
    apply.expect(0);
    runs.push(apply);
    let after = [
        certplane(&["plan", "-vvv", approle_dir], &approle_env, bao.dir()),
        certplane(
            &["plan", "-vvv", "-o", "json", token_dir],
            &token_env,
            bao.dir(),
        ),
        certplane(
            &["apply", "--auto-approve", "-vvv", token_dir],
            &token_env,
            bao.dir(),
        ),
    ];
    for r in &after {
        r.expect(0);
    }
    json_plan(&after[1]);
    runs.extend(after);

    let mut needles: Vec<(String, &str)> = vec![
        (token.clone(), "the Vault token"),
        (secret_id.clone(), "the AppRole secret ID"),
        ("PRIVATE KEY".to_string(), "a private key block"),
    ];
    for line in pem_body_lines(&import_key) {
        needles.push((line, "the imported bundle's key"));
    }
    for line in pem_body_lines(&ext_key) {
        needles.push((line, "the external signer's key"));
    }
    for (i, run) in runs.iter().enumerate() {
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            for (needle, what) in &needles {
                assert!(
                    !text.contains(needle.as_str()),
                    "run {i} printed {what} on {stream}\n{}",
                    run.both()
                );
            }
            let tokens = token_like(text);
            assert!(
                tokens.is_empty(),
                "run {i} printed token-like strings on {stream}: {tokens:?}\n{}",
                run.both()
            );
        }
    }
    // The run did log in and sign: the secrets were used, not just avoided.
    assert!(
        bao.audit_entries()
            .iter()
            .any(|(_, p)| p == "auth/approle/login")
    );
    assert!(read(&bao, "external_int/issuer/default").is_some());
    assert!(read(&bao, "imported/issuer/default").is_some());
    // Trace logging really was on: without log lines the checks above prove
    // little about logs.
    assert!(
        runs.iter().all(|r| !r.stderr.trim().is_empty()),
        "expected trace logs on stderr of every run\n{}",
        runs.iter().map(Run::both).collect::<Vec<_>>().join("\n")
    );
}
