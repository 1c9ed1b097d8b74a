//! `certplane watch` as a process against a real OpenBao: edits in a temp
//! repository trigger re-plans, an invalid edit prints its diagnostic and
//! the loop stays alive, `--apply` brings a change to OpenBao, SIGTERM ends
//! it with 0; a token that expires or is revoked is replaced by a new login
//! (or, given as VAULT_TOKEN, named as expired), and errors go to stderr,
//! never stdout.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;

/// Which stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

struct Watch {
    child: Child,
    lines: Receiver<(Stream, String)>,
    seen: Vec<(Stream, String)>,
}

impl Watch {
    /// `certplane watch <args>` with the root token in VAULT_TOKEN.
    fn start(bao: &OpenBao, args: &[&str]) -> Watch {
        Watch::start_with(bao, args, &[("VAULT_TOKEN", bao.token())])
    }

    /// `certplane watch <args>` with VAULT_ADDR and `env` only.
    fn start_with(bao: &OpenBao, args: &[&str], env: &[(&str, &str)]) -> Watch {
        let mut cmd = command(bao.dir());
        cmd.arg("watch").args(args).env("VAULT_ADDR", bao.addr());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn certplane watch");
        let (tx, rx) = channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send((Stream::Out, l));
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send((Stream::Err, l));
            }
        });
        Watch {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Everything seen so far, for assertion messages.
    fn transcript(&self) -> String {
        self.seen
            .iter()
            .map(|(s, l)| format!("{s:?}: {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits (at most 20 s) for a line containing `text` on either stream;
    /// returns it.
    #[track_caller]
    fn expect(&mut self, text: &str) -> String {
        self.expect_where(text, None)
    }

    /// Waits (at most 20 s) for a line containing `text` on `stream`.
    #[track_caller]
    fn expect_on(&mut self, stream: Stream, text: &str) -> String {
        self.expect_where(text, Some(stream))
    }

    #[track_caller]
    fn expect_where(&mut self, text: &str, stream: Option<Stream>) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((s, l)) => {
                    self.seen.push((s, l.clone()));
                    if l.contains(text) && stream.is_none_or(|want| want == s) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no line with {text:?} on {stream:?} within 20s; output so far:\n{}",
                    self.transcript()
                ),
            }
        }
    }

    /// The lines seen so far on `stream`.
    fn printed(&self, stream: Stream) -> Vec<&str> {
        self.seen
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, l)| l.as_str())
            .collect()
    }

    /// Errors were printed on stderr only: stdout holds no error line.
    #[track_caller]
    fn assert_errors_on_stderr_only(&self) {
        let leaked: Vec<&str> = self
            .printed(Stream::Out)
            .into_iter()
            .filter(|l| {
                let l = l.to_lowercase();
                l.contains("error") || l.contains("permission denied") || l.contains("invalid:")
            })
            .collect();
        assert!(
            leaked.is_empty(),
            "errors on stdout: {leaked:?}\n{}",
            self.transcript()
        );
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, then the exit code (within 10 s).
    fn stop(mut self) -> i32 {
        terminate(&mut self.child, 10)
            .unwrap_or_else(|e| panic!("watch did not stop on SIGTERM: {e}"))
            .unwrap_or(-1)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn set_role_ttl(repo: &Path, from: &str, to: &str) {
    let roles = std::fs::read_to_string(repo.join("roles.yaml")).unwrap();
    assert!(roles.contains(&format!("  ttl: {from}\n")));
    let roles = roles.replace(&format!("  ttl: {from}\n"), &format!("  ttl: {to}\n"));
    std::fs::write(repo.join("roles.yaml"), roles).unwrap();
}

/// Polls the role's ttl until it is `secs` (at most 10 s).
fn wait_role_ttl(bao: &OpenBao, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let role = read(bao, "pki_int/roles/homelab-dot-local");
        if role.as_ref().is_some_and(|r| r["ttl"] == json!(secs)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "role ttl never became {secs}: {role:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn edits_replan_and_an_invalid_edit_keeps_the_loop_alive() {
    let bao = OpenBao::start();
    let repo = bao.dir().join("repo");
    copy_dir(&homelab(), &repo);
    let render = bao.dir().join("rendered");
    let mut w = Watch::start(
        &bao,
        &[
            "--debounce",
            "200ms",
            "--render",
            render.to_str().unwrap(),
            repo.to_str().unwrap(),
        ],
    );
    w.expect("Watching");
    w.expect("to create");

    // A valid edit: re-planned (still nothing applied: plan only).
    set_role_ttl(&repo, "24h", "12h");
    let changed = w.expect("--- changed:");
    assert!(changed.contains("roles.yaml"), "{changed}");
    w.expect("to create");

    // An invalid edit: its diagnostic, and the loop goes on; both on stderr.
    std::fs::write(repo.join("broken.yaml"), "kind: [unclosed\n").unwrap();
    w.expect_on(Stream::Err, "broken.yaml");
    w.expect_on(Stream::Err, "invalid:");
    assert!(w.alive(), "watch must survive an invalid edit");

    // Fixed: planned again.
    std::fs::remove_file(repo.join("broken.yaml")).unwrap();
    w.expect("--- changed:");
    w.expect("to create");
    assert!(
        read(&bao, "sys/mounts/pki_int/tune").is_none(),
        "plan only: nothing applied"
    );
    w.assert_errors_on_stderr_only();
    assert_eq!(w.stop(), 0);
}

#[test]
fn with_apply_a_change_reaches_openbao() {
    let bao = OpenBao::start();
    let repo = bao.dir().join("repo");
    copy_dir(&homelab(), &repo);
    let render = bao.dir().join("rendered");
    let mut w = Watch::start(
        &bao,
        &[
            "--apply",
            "--debounce",
            "200ms",
            "--render",
            render.to_str().unwrap(),
            repo.to_str().unwrap(),
        ],
    );
    w.expect("Apply complete!");
    wait_role_ttl(&bao, 86400);

    set_role_ttl(&repo, "24h", "12h");
    w.expect("--- changed:");
    w.expect("Plan: 0 to create, 1 to update");
    w.expect("Apply complete!");
    wait_role_ttl(&bao, 43200);

    // An invalid edit applies nothing; the last good state stays in force.
    set_role_ttl(&repo, "12h", "not-a-duration");
    w.expect("invalid:");
    assert!(w.alive());
    wait_role_ttl(&bao, 43200);

    set_role_ttl(&repo, "not-a-duration", "6h");
    w.expect_on(Stream::Out, "Apply complete!");
    wait_role_ttl(&bao, 21600);
    w.assert_errors_on_stderr_only();
    assert_eq!(w.stop(), 0);
}

/// A repository of one policy: applying it takes one write.
fn policy_repo(bao: &OpenBao, path: &str) -> std::path::PathBuf {
    let repo = bao.dir().join("policy-repo");
    std::fs::create_dir_all(&repo).unwrap();
    set_policy_path(&repo, path);
    repo
}

fn set_policy_path(repo: &Path, path: &str) {
    std::fs::write(
        repo.join("policy.yaml"),
        format!(
            "apiVersion: certplane.dev/v1alpha1\nkind: Policy\nmetadata: {{name: watched}}\n\
             spec:\n  rules:\n    - path: {path}\n      capabilities: [update]\n"
        ),
    )
    .unwrap();
}

/// Polls the policy until its text names `path` (at most 10 s).
fn wait_policy(bao: &OpenBao, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let policy = read(bao, "sys/policies/acl/watched");
        let text = policy
            .as_ref()
            .and_then(|p| p["policy"].as_str())
            .unwrap_or_default()
            .to_string();
        if text.contains(path) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the policy never named {path}: {policy:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn approle_logins(bao: &OpenBao) -> usize {
    bao.audit_entries()
        .iter()
        .filter(|(_, p)| p == "auth/approle/login")
        .count()
}

/// `watch --apply` logging in with AppRole; `CERTPLANE_SECRET_ID` holds the
/// secret ID.
fn watch_with_approle(bao: &OpenBao, role_id: &str, secret_id: &str, repo: &Path) -> Watch {
    Watch::start_with(
        bao,
        &[
            "--vault-auth",
            "approle",
            "--vault-role-id",
            role_id,
            "--vault-auth-secret-env",
            "CERTPLANE_SECRET_ID",
            "--apply",
            "--debounce",
            "200ms",
            repo.to_str().unwrap(),
        ],
        &[("CERTPLANE_SECRET_ID", secret_id)],
    )
}

/// Regression: `watch` kept its first token forever; once it expired,
/// every later edit failed with a misleading "permission denied ... must
/// grant read". Its AppRole tokens here live 3 s and cannot be renewed
/// (batch tokens): an edit after that is applied with a new login.
#[test]
fn regression_watch_logs_in_again_after_its_token_expires() {
    let bao = OpenBao::start_with_audit();
    let (role_id, secret_id) = approle_for_certplane(&bao);
    bao.bao_ok(&[
        "write",
        "auth/approle/role/certplane",
        "token_policies=certplane-admin",
        "token_type=batch",
        "token_ttl=3s",
        "token_max_ttl=3s",
    ]);
    let repo = policy_repo(&bao, "pki/sign/web");
    let mut w = watch_with_approle(&bao, &role_id, &secret_id, &repo);
    w.expect_on(Stream::Out, "Apply complete!");
    wait_policy(&bao, "pki/sign/web");
    assert_eq!(approle_logins(&bao), 1);

    // The token has expired: the next edit logs in again and is applied.
    std::thread::sleep(Duration::from_secs(4));
    set_policy_path(&repo, "pki/sign/api");
    w.expect_on(Stream::Out, "Apply complete!");
    wait_policy(&bao, "pki/sign/api");
    assert!(approle_logins(&bao) >= 2, "{}", w.transcript());
    let out = w.transcript();
    assert!(!out.contains("permission denied"), "{out}");
    assert!(!out.contains(&secret_id), "the secret ID was printed");
    w.assert_errors_on_stderr_only();
    assert_eq!(w.stop(), 0);
}

/// A token revoked while watch runs (here: every token AppRole issued) is
/// found dead at the next edit, replaced by a new login, and the edit is
/// applied.
#[test]
fn regression_watch_logs_in_again_after_its_token_is_revoked() {
    let bao = OpenBao::start_with_audit();
    let (role_id, secret_id) = approle_for_certplane(&bao);
    let repo = policy_repo(&bao, "pki/sign/web");
    let mut w = watch_with_approle(&bao, &role_id, &secret_id, &repo);
    w.expect_on(Stream::Out, "Apply complete!");
    wait_policy(&bao, "pki/sign/web");

    bao.bao_ok(&["token", "revoke", "-mode=path", "auth/approle/login"]);
    set_policy_path(&repo, "pki/sign/api");
    w.expect_on(Stream::Out, "Apply complete!");
    wait_policy(&bao, "pki/sign/api");
    assert_eq!(approle_logins(&bao), 2, "{}", w.transcript());
    w.assert_errors_on_stderr_only();
    assert_eq!(w.stop(), 0);
}

/// A token given as VAULT_TOKEN cannot be obtained again: once it expired,
/// `watch` says so on stderr (not "permission denied"), nothing on stdout,
/// and goes on watching.
#[test]
fn regression_an_expired_vault_token_is_named_as_expired() {
    let bao = OpenBao::start();
    let policy = bao.dir().join("admin.hcl");
    std::fs::write(
        &policy,
        "path \"*\" {\n  capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\", \"sudo\"]\n}\n",
    )
    .unwrap();
    bao.bao_ok(&["policy", "write", "admin", policy.to_str().unwrap()]);
    let token = bao
        .bao_ok(&[
            "token",
            "create",
            "-policy=admin",
            "-ttl=3s",
            "-renewable=false",
            "-field=token",
        ])
        .trim()
        .to_string();
    let repo = policy_repo(&bao, "pki/sign/web");
    let mut w = Watch::start_with(
        &bao,
        &["--debounce", "200ms", repo.to_str().unwrap()],
        &[("VAULT_TOKEN", &token)],
    );
    w.expect_on(Stream::Out, "to create");
    std::thread::sleep(Duration::from_secs(4));
    set_policy_path(&repo, "pki/sign/api");
    let line = w.expect_on(Stream::Err, "the vault token from env VAULT_TOKEN expired");
    assert!(line.contains("cannot obtain a new token"), "{line}");
    w.expect_on(Stream::Err, "will try again on the next change");
    assert!(w.alive());
    let out = w.transcript();
    assert!(!out.contains("permission denied"), "{out}");
    assert!(!out.contains(&token), "the token was printed");
    w.assert_errors_on_stderr_only();
    assert_eq!(w.stop(), 0);
}
