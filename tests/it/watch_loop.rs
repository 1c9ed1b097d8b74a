//! `certplane watch` as a process against a real OpenBao: edits in a temp
//! repository trigger re-plans, an invalid edit prints its diagnostic and
//! the loop stays alive, `--apply` brings a change to OpenBao, and SIGTERM
//! ends it with 0.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;

struct Watch {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    fn start(bao: &OpenBao, args: &[&str]) -> Watch {
        let mut child = command(bao.dir())
            .arg("watch")
            .args(args)
            .env("VAULT_ADDR", bao.addr())
            .env("VAULT_TOKEN", bao.token())
            .spawn()
            .expect("spawn certplane watch");
        let (tx, rx) = channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(l);
            }
        });
        Watch {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits (at most 20 s) for a line containing `text`; returns it.
    #[track_caller]
    fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(text) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no line with {text:?} within 20s; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
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

    // An invalid edit: its diagnostic, and the loop goes on.
    std::fs::write(repo.join("broken.yaml"), "kind: [unclosed\n").unwrap();
    w.expect("broken.yaml");
    w.expect("invalid:");
    assert!(w.alive(), "watch must survive an invalid edit");

    // Fixed: planned again.
    std::fs::remove_file(repo.join("broken.yaml")).unwrap();
    w.expect("--- changed:");
    w.expect("to create");
    assert!(
        read(&bao, "sys/mounts/pki_int/tune").is_none(),
        "plan only: nothing applied"
    );
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
    w.expect("Apply complete!");
    wait_role_ttl(&bao, 21600);
    assert_eq!(w.stop(), 0);
}
