//! `certplane run`, end to end: the binary follows a real bare Git
//! repository made in a temp directory and converges a real OpenBao. New
//! commits are applied within an interval, an invalid commit is refused and
//! the last good one stays in force, drift is repaired without a commit,
//! unsigned commits are refused with verification on, /metrics and /readyz
//! tell the truth, the loop logs in once and renews its token, a commit
//! cannot point the token at another Vault, SIGTERM exits 0, and an apply
//! lock another certplane holds keeps the loop from writing (and is named on
//! /readyz) until it is released.

use crate::common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Daemon, approle_for_certplane, free_port, read};
use common::git::{GitRepo, git};
use common::{OpenBao, homelab_role_ttl as role_ttl};

const ROLE: &str = "pki_int/roles/homelab-dot-local";

/// `certplane run` following `repo`, logging JSON.
fn start(repo: &GitRepo, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
    start_url(&repo.url(), extra, env)
}

/// `certplane run` following `url`, logging JSON.
fn start_url(url: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
    let mut args = vec!["--log-format", "json"];
    args.extend(extra);
    Daemon::run(tempfile::tempdir().unwrap(), url, &args, env)
}

#[test]
fn applies_commits_refuses_bad_ones_repairs_drift_and_reports() {
    let bao = OpenBao::start();
    let repo = GitRepo::homelab();
    let first = repo.commit("homelab", None);
    let addr = bao.addr();
    let mut lp = start(
        &repo,
        &[],
        &[("VAULT_ADDR", &addr), ("VAULT_TOKEN", bao.token())],
    );

    // The first commit is applied; /readyz turns 200.
    lp.wait(30, "the first commit applied", |_| {
        role_ttl(&bao) == Some(86400)
    });
    lp.wait(10, "/readyz 200", |l| l.readyz().0 == 200);
    // The cluster half is rendered for Flux/Argo (--render), for the
    // repository identity derived from the Git URL (`.../origin.git`).
    let rendered = lp
        .dir()
        .join("rendered/_cluster/clusterissuer.cert-manager.io-homelab.yaml");
    let text = std::fs::read_to_string(&rendered)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", rendered.display(), lp.logs()));
    assert!(
        text.starts_with("# Rendered by certplane for repository origin: "),
        "{text}"
    );
    let m = lp.metrics();
    assert_eq!(
        m.value(
            "certplane_last_applied_commit_info",
            &format!("commit=\"{first}\"")
        ),
        1.0
    );

    // A new commit is applied within an interval or two.
    repo.edit("roles.yaml", "ttl: 24h", "ttl: 12h");
    let second = repo.commit("shorter ttl", None);
    lp.wait(10, "the second commit applied", |_| {
        role_ttl(&bao) == Some(43200)
    });
    lp.wait(5, "the second commit in force", |l| {
        l.metrics().get(
            "certplane_last_applied_commit_info",
            &format!("commit=\"{second}\""),
        ) == Some(1.0)
    });

    // An invalid commit is refused; the previous state stays and /readyz says why.
    repo.edit("roles.yaml", "ttl: 12h", "ttl: 1h");
    repo.edit("roles.yaml", "mount: pki_int", "mount: pki_nowhere");
    let bad = repo.commit("role on an undeclared mount", None);
    lp.wait(10, "/readyz 503 naming the refused commit", |l| {
        let (code, body) = l.readyz();
        code == 503 && body.contains(&bad[..12]) && body.contains("refused")
    });
    let m = lp.metrics();
    assert_eq!(m.value("certplane_rejected_commits_total", ""), 1.0);
    assert_eq!(
        m.value(
            "certplane_last_applied_commit_info",
            &format!("commit=\"{second}\"")
        ),
        1.0
    );
    assert_eq!(
        role_ttl(&bao),
        Some(43200),
        "the refused commit was applied"
    );
    assert!(lp.logs().contains("pki_nowhere"), "{}", lp.logs());

    // Drift made out of band is repaired without a commit (the last good
    // commit is still the one in force).
    let before = lp.metrics().value("certplane_drift_repairs_total", "");
    bao.bao_ok(&[
        "write",
        ROLE,
        "ttl=1h",
        "max_ttl=2h",
        "allowed_domains=evil.test",
    ]);
    lp.wait(10, "drift repaired", |_| {
        read(&bao, ROLE).is_some_and(|d| {
            d["ttl"] == 43200 && d["max_ttl"] == 86400 && d["allowed_domains"][0] == "homelab.local"
        })
    });
    lp.wait(5, "the repair counted", |l| {
        l.metrics().value("certplane_drift_repairs_total", "") > before
    });
    // The log says what drifted: the role, its fields, and how certplane
    // knows (the commit in force was applied in full before).
    let logs = lp.logs();
    let drift = logs
        .lines()
        .find(|l| l.contains("drift: changed since certplane applied this same input"))
        .unwrap_or_else(|| panic!("no drift line:\n{logs}"));
    assert!(
        drift.contains("vault:pki_int/roles/homelab-dot-local")
            && drift.contains("allowed_domains")
            && drift.contains("ttl"),
        "{drift}"
    );

    // A fixed commit makes it ready again; every metric is there.
    repo.edit("roles.yaml", "mount: pki_nowhere", "mount: pki_int");
    let fixed = repo.commit("fix", None);
    lp.wait(10, "the fixed commit applied", |_| {
        role_ttl(&bao) == Some(3600)
    });
    lp.wait(5, "/readyz 200 again", |l| l.readyz().0 == 200);
    // The plan after the apply finds nothing to do.
    lp.wait(5, "a plan with no changes", |l| {
        l.metrics().get("certplane_objects", "action=\"update\"") == Some(0.0)
    });
    let m = lp.metrics();
    let head = git(&repo.work(), repo.home(), &["rev-parse", "HEAD"]);
    assert_eq!(fixed, head);
    assert_eq!(
        m.value(
            "certplane_last_applied_commit_info",
            &format!("commit=\"{head}\"")
        ),
        1.0
    );
    for name in [
        "certplane_reconcile_duration_seconds_bucket",
        "certplane_reconcile_duration_seconds_sum",
        "certplane_reconcile_duration_seconds_count",
        "certplane_drift_repairs_total",
        "certplane_vault_logins_total",
    ] {
        assert!(m.has(name), "{name} missing");
    }
    assert!(m.value("certplane_reconcile_total", "result=\"success\"") >= 3.0);
    assert!(m.value("certplane_reconcile_total", "result=\"failure\"") >= 1.0);
    for action in ["create", "update", "replace", "delete"] {
        assert_eq!(
            m.value("certplane_objects", &format!("action=\"{action}\"")),
            0.0
        );
    }
    assert!(m.value("certplane_objects", "action=\"unchanged\"") >= 5.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    for labels in [
        "mount=\"pki\",issuer=\"homelab-root\"",
        "mount=\"pki_int\",issuer=\"homelab-int\"",
    ] {
        let t = m.value("certplane_ca_not_after_seconds", labels);
        assert!(t > now + 365.0 * 86400.0, "{labels}: {t}");
    }
    // A root token: no login at all.
    assert_eq!(m.value("certplane_vault_logins_total", ""), 0.0);
    assert_eq!(lp.get("/healthz").map(|x| x.0), Some(200));

    // JSON logs, and no token in them.
    let logs = lp.logs();
    assert!(
        logs.lines().all(|l| l.starts_with('{')),
        "not JSON lines:\n{logs}"
    );
    // One JSON record per reconcile: commit, changes, drift, duration,
    // result; and one per refused commit.
    let records: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["target"] == "certplane::reconcile")
        .collect();
    let first_applied = records
        .iter()
        .find(|r| r["fields"]["result"] == "applied")
        .unwrap_or_else(|| panic!("no reconcile record:\n{logs}"));
    assert_eq!(first_applied["fields"]["commit"], first[..12]);
    assert!(first_applied["fields"]["changes"].as_u64() > Some(0));
    assert_eq!(first_applied["fields"]["drift"], 0);
    assert!(
        first_applied["fields"]["duration"]
            .as_str()
            .is_some_and(|d| d.ends_with('s')),
        "{first_applied}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["fields"]["result"] == "drift-repaired"
                && r["fields"]["commit"] == second[..12]
                && r["fields"]["drift"].as_u64() > Some(0)),
        "{logs}"
    );
    let refused: Vec<_> = records
        .iter()
        .filter(|r| r["fields"]["result"] == "refused")
        .collect();
    assert_eq!(refused.len(), 1, "{logs}");
    assert_eq!(refused[0]["fields"]["commit"], bad[..12]);

    // OpenBao stops: /readyz flips to 503 and says vault.
    drop(bao);
    lp.wait(15, "/readyz 503 once OpenBao is gone", |l| {
        let (code, body) = l.readyz();
        code == 503 && body.contains("vault")
    });
    assert_eq!(lp.get("/healthz").map(|x| x.0), Some(200));
}

/// The lines `certplane run` printed for the target `certplane::reconcile`.
fn report_lines(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|l| l.contains("certplane::reconcile"))
        .collect()
}

#[test]
fn default_verbosity_prints_one_line_per_reconcile_and_every_refusal() {
    let bao = OpenBao::start();
    let repo = GitRepo::homelab();
    let first = repo.commit("homelab", None);
    let addr = bao.addr();
    // No -v, text logs.
    let mut lp = Daemon::run_verbose(
        tempfile::tempdir().unwrap(),
        &repo.url(),
        &[],
        &[],
        &[("VAULT_ADDR", &addr), ("VAULT_TOKEN", bao.token())],
    );
    let applied = format!("commit={} ", &first[..12]);
    lp.wait(30, "a line for the first reconcile", |l| {
        report_lines(&l.logs())
            .iter()
            .any(|x| x.contains(&applied) && x.contains("result=applied"))
    });
    let logs = lp.logs();
    let line = report_lines(&logs)
        .into_iter()
        .find(|x| x.contains("result=applied"))
        .unwrap();
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("drift=0"), "{line}");
    let changes: u64 = line
        .split("changes=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no changes=N: {line}"));
    assert!(changes > 5, "{line}");
    assert!(
        line.split("duration=")
            .nth(1)
            .is_some_and(|r| r.split(' ').next().unwrap().ends_with('s')),
        "{line}"
    );
    // The next intervals: one line each, in sync.
    lp.wait(10, "an in-sync line", |l| {
        report_lines(&l.logs())
            .iter()
            .any(|x| x.contains("result=in-sync") && x.contains("changes=0"))
    });
    // Nothing else of certplane's info output at this verbosity.
    let logs = lp.logs();
    assert!(!logs.contains("new commit"), "{logs}");

    // A refused commit: one error line naming it and why.
    repo.edit("roles.yaml", "mount: pki_int", "mount: pki_nowhere");
    let bad = repo.commit("role on an undeclared mount", None);
    lp.wait(10, "the refusal", |l| {
        report_lines(&l.logs()).iter().any(|x| {
            x.contains(" ERROR ")
                && x.contains("commit refused")
                && x.contains(&format!("commit={} ", &bad[..12]))
                && x.contains("pki_nowhere")
        })
    });

    // Drift repaired: the line says so, with the commit in force.
    bao.bao_ok(&["write", ROLE, "ttl=1h", "max_ttl=2h"]);
    lp.wait(10, "the repair line", |l| {
        report_lines(&l.logs()).iter().any(|x| {
            x.contains(&applied) && x.contains("result=drift-repaired") && x.contains("drift=1")
        })
    });
    assert_eq!(role_ttl(&bao), Some(86400));
}

#[test]
fn one_approle_login_for_many_intervals_and_the_token_is_renewed() {
    let bao = OpenBao::start_with_audit();
    let (role_id, secret_id) = approle_for_certplane(&bao);
    // A short-lived token: renewed every ~2.7s, never a second login.
    bao.bao_ok(&[
        "write",
        "auth/approle/role/certplane",
        "token_policies=certplane-admin",
        "token_ttl=4s",
        "token_max_ttl=120s",
    ]);
    let repo = GitRepo::homelab();
    repo.commit("homelab", None);
    // The login is the operator's (flags of the process), never the
    // repository's: the secret ID stays in a variable no source may read.
    let addr = bao.addr();
    let mut lp = start(
        &repo,
        &[
            "--vault-addr",
            &addr,
            "--vault-auth",
            "approle",
            "--vault-role-id",
            &role_id,
            "--vault-auth-secret-env",
            "CERTPLANE_SECRET_ID",
        ],
        &[("CERTPLANE_SECRET_ID", &secret_id)],
    );
    lp.wait(30, "applied", |_| role_ttl(&bao) == Some(86400));
    let start = Instant::now();
    lp.wait(20, "two renewals", |_| {
        bao.audit_entries()
            .iter()
            .filter(|(_, p)| p == "auth/token/renew-self")
            .count()
            >= 2
    });
    // Several more intervals, past the token's first TTL.
    let passed = start.elapsed();
    if passed < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_secs(6) - passed);
    }
    // Still working: drift is repaired with the renewed token.
    bao.bao_ok(&["write", ROLE, "ttl=1h", "max_ttl=2h"]);
    lp.wait(10, "drift repaired with the renewed token", |_| {
        role_ttl(&bao) == Some(86400)
    });
    let logins: Vec<String> = bao
        .audit_entries()
        .into_iter()
        .filter(|(_, p)| p.starts_with("auth/") && p.ends_with("/login"))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        logins,
        vec!["auth/approle/login".to_string()],
        "{}",
        lp.logs()
    );
    let m = lp.metrics();
    assert_eq!(m.value("certplane_vault_logins_total", ""), 1.0);
    assert!(m.value("certplane_vault_token_renewals_total", "") >= 2.0);
    assert!(!lp.logs().contains(&secret_id), "the secret ID was logged");
}

#[test]
fn unsigned_commits_are_refused_and_trusted_signed_ones_applied() {
    if Command::new("ssh-keygen").arg("-?").output().is_err() {
        eprintln!("SKIPPED: ssh-keygen is not installed; SSH commit signing cannot be tested");
        return;
    }
    let bao = OpenBao::start();
    let repo = GitRepo::homelab();
    let key = repo.home().join("signing");
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "test@example.com",
            "-f",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let signers = repo.home().join("allowed_signers");
    std::fs::write(
        &signers,
        format!("test@example.com namespaces=\"git\" {}", public.trim()),
    )
    .unwrap();
    // A second key that is not trusted.
    let other = repo.home().join("other");
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .output()
        .unwrap();

    let unsigned = repo.commit("unsigned", None);
    let addr = bao.addr();
    let signers_arg = signers.to_str().unwrap().to_string();
    let mut lp = start(
        &repo,
        &["--verify-signatures", "--trusted-keys", &signers_arg],
        &[("VAULT_ADDR", &addr), ("VAULT_TOKEN", bao.token())],
    );
    lp.wait(15, "the unsigned commit refused", |l| {
        let (code, body) = l.readyz();
        code == 503 && body.contains(&unsigned[..12]) && body.contains("signature")
    });
    assert!(read(&bao, ROLE).is_none(), "an unsigned commit was applied");

    repo.edit("roles.yaml", "ttl: 24h", "ttl: 12h");
    let untrusted = repo.commit("signed by a stranger", Some(&other));
    lp.wait(15, "the untrusted commit refused", |l| {
        let (code, body) = l.readyz();
        code == 503 && body.contains(&untrusted[..12])
    });
    assert!(
        read(&bao, ROLE).is_none(),
        "an untrusted commit was applied"
    );

    let signed = repo.commit("signed", Some(&key));
    lp.wait(20, "the signed commit applied", |_| {
        role_ttl(&bao) == Some(43200)
    });
    lp.wait(5, "ready", |l| l.readyz().0 == 200);
    assert_eq!(
        lp.metrics().value(
            "certplane_last_applied_commit_info",
            &format!("commit=\"{signed}\"")
        ),
        1.0
    );
    assert_eq!(
        lp.metrics().value("certplane_rejected_commits_total", ""),
        2.0
    );
}

#[test]
fn sigterm_exits_zero() {
    let bao = OpenBao::start();
    let repo = GitRepo::homelab();
    repo.commit("homelab", None);
    let addr = bao.addr();
    let mut lp = start(
        &repo,
        &[],
        &[("VAULT_ADDR", &addr), ("VAULT_TOKEN", bao.token())],
    );
    lp.wait(30, "applied", |_| role_ttl(&bao) == Some(86400));
    // A long-lived process keeps two worker threads (its health endpoint
    // answers while a plan reads the repository); a one-shot command has
    // none (bench_harness).
    let threads = common::cli::thread_names(lp.child.id());
    assert_eq!(
        threads.iter().filter(|t| *t == "tokio-rt-worker").count(),
        2,
        "{threads:?}"
    );
    let code = common::terminate(&mut lp.child, 5).unwrap_or_else(|e| panic!("{e}\n{}", lp.logs()));
    assert_eq!(code, Some(0), "{}", lp.logs());
    assert!(lp.logs().contains("shutting down"), "{}", lp.logs());
}

/// A static HTTPS server (git's "dumb" HTTP protocol) over a directory, with
/// a certificate for 127.0.0.1 from a private CA; killed on drop.
struct HttpsGit {
    child: Child,
    port: u16,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl HttpsGit {
    fn serve(root: &Path) -> HttpsGit {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "certplane test git CA");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(p("server.pem"), leaf.pem()).unwrap();
        std::fs::write(p("server.key"), key.serialize_pem()).unwrap();
        std::fs::write(
            p("serve.py"),
            "import functools, http.server, ssl, sys\n\
             port, root, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]\n\
             h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)\n\
             srv = http.server.ThreadingHTTPServer(('127.0.0.1', port), h)\n\
             ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
             ctx.load_cert_chain(cert, key)\n\
             srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n\
             srv.serve_forever()\n",
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("python3")
            .arg(p("serve.py"))
            .arg(port.to_string())
            .arg(root)
            .arg(p("server.pem"))
            .arg(p("server.key"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 serves the test repository");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the https server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        HttpsGit {
            child,
            port,
            ca: p("ca.pem"),
            _dir: dir,
        }
    }
}

impl Drop for HttpsGit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn fetches_over_https_trusting_only_the_given_ca_bundle() {
    let bao = OpenBao::start();
    let repo = GitRepo::homelab();
    repo.commit("homelab", None);
    // The dumb HTTP protocol needs the refs listed in info/refs.
    git(
        &repo.home().join("origin.git"),
        repo.home(),
        &["update-server-info"],
    );
    let server = HttpsGit::serve(repo.home());
    let url = format!("https://127.0.0.1:{}/origin.git", server.port);
    let addr = bao.addr();
    let env = [("VAULT_ADDR", addr.as_str()), ("VAULT_TOKEN", bao.token())];

    // Without the CA bundle the server is not trusted: nothing is applied.
    let mut untrusted = start_url(&url, &[], &env);
    untrusted.wait(20, "a refused fetch on /readyz", |l| {
        let (code, body) = l.readyz();
        code == 503 && !body.is_empty()
    });
    assert!(role_ttl(&bao).is_none(), "{}", untrusted.logs());
    drop(untrusted);

    let ca = server.ca.to_str().unwrap().to_string();
    let mut trusted = start_url(&url, &["--git-ca-bundle", &ca], &env);
    trusted.wait(30, "the commit fetched over https applied", |_| {
        role_ttl(&bao) == Some(86400)
    });
    trusted.wait(10, "/readyz 200", |l| l.readyz().0 == 200);
}

/// Regression: a commit that set `spec.vault.address` in certplane.yaml made
/// `run` send its `X-Vault-Token` to that address on every interval.
#[test]
fn a_commit_cannot_point_the_token_at_another_vault() {
    let bao = OpenBao::start();
    let decoy = common::Decoy::start();
    let repo = GitRepo::homelab();
    repo.commit("homelab", None);
    let addr = bao.addr();
    let mut lp = start(
        &repo,
        &[],
        &[("VAULT_ADDR", &addr), ("VAULT_TOKEN", bao.token())],
    );
    lp.wait(30, "the first commit applied", |_| {
        role_ttl(&bao) == Some(86400)
    });

    // A commit naming the operator's own address is fine...
    std::fs::write(
        repo.work().join("certplane.yaml"),
        format!("apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec:\n  vault:\n    address: {addr}/\n"),
    )
    .unwrap();
    repo.edit("roles.yaml", "ttl: 24h", "ttl: 12h");
    let same = repo.commit("repeat the operator's address", None);
    lp.wait(15, "the commit repeating the address applied", |l| {
        role_ttl(&bao) == Some(43200)
            && l.metrics().get(
                "certplane_last_applied_commit_info",
                &format!("commit=\"{same}\""),
            ) == Some(1.0)
    });

    // ...one naming another is refused, and that address never hears from us.
    std::fs::write(
        repo.work().join("certplane.yaml"),
        format!(
            "apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec:\n  vault:\n    address: {}\n",
            decoy.addr()
        ),
    )
    .unwrap();
    repo.edit("roles.yaml", "ttl: 12h", "ttl: 6h");
    let evil = repo.commit("send the token elsewhere", None);
    lp.wait(15, "/readyz 503 naming the refused commit", |l| {
        let (code, body) = l.readyz();
        code == 503 && body.contains(&evil[..12]) && body.contains("refused")
    });
    let logs = lp.logs();
    assert!(
        logs.contains("spec.vault.address") && logs.contains("differs from the Vault address"),
        "{logs}"
    );
    // The last good commit stays in force: drift is still repaired, against
    // the operator's Vault, for several intervals.
    bao.bao_ok(&["write", ROLE, "ttl=1h", "max_ttl=2h"]);
    lp.wait(15, "drift repaired under the last good commit", |_| {
        role_ttl(&bao) == Some(43200)
    });
    std::thread::sleep(Duration::from_secs(3));
    let m = lp.metrics();
    assert_eq!(m.value("certplane_rejected_commits_total", ""), 1.0);
    assert_eq!(
        m.value(
            "certplane_last_applied_commit_info",
            &format!("commit=\"{same}\"")
        ),
        1.0
    );
    let seen = decoy.requests();
    assert!(
        seen.is_empty(),
        "the repository's address received {} connection(s): {seen:?}",
        seen.len()
    );
}

#[test]
fn run_needs_the_vault_address_from_its_operator() {
    let repo = GitRepo::homelab();
    std::fs::write(
        repo.work().join("certplane.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec:\n  vault:\n    address: http://127.0.0.1:1\n",
    )
    .unwrap();
    repo.commit("the repository names a vault", None);
    let mut lp = start(&repo, &[], &[("VAULT_TOKEN", "x")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(s)) = lp.child.try_wait() {
            break s;
        }
        assert!(Instant::now() < deadline, "run did not stop\n{}", lp.logs());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "{}", lp.logs());
    assert!(
        lp.logs()
            .contains("needs the vault address from its operator"),
        "{}",
        lp.logs()
    );
}

#[test]
fn readyz_turns_503_while_vault_hangs_not_only_when_the_reconcile_ends() {
    // Regression: /readyz stayed 200 for 30 s while Vault hung (SIGSTOP).
    let bao = OpenBao::start();
    let repo = GitRepo::homelab();
    repo.commit("homelab", None);
    let addr = bao.addr();
    let mut lp = start(
        &repo,
        &["--reconcile-timeout", "2s"],
        &[
            ("VAULT_ADDR", &addr),
            ("VAULT_TOKEN", bao.token()),
            // The hung request itself would end only after this long.
            ("CERTPLANE_VAULT_TIMEOUT", "120"),
        ],
    );
    lp.wait(30, "applied", |_| role_ttl(&bao) == Some(86400));
    lp.wait(10, "/readyz 200", |l| l.readyz().0 == 200);
    bao.pause();
    let frozen = Instant::now();
    lp.wait(10, "/readyz 503 naming the overrun", |l| {
        let (code, body) = l.readyz();
        code == 503 && body.contains("over its deadline of 2s")
    });
    assert!(
        frozen.elapsed() < Duration::from_secs(10),
        "{:?}",
        frozen.elapsed()
    );
    assert_eq!(lp.metrics().value("certplane_ready", ""), 0.0);
    // Liveness is not readiness: the process is fine.
    assert_eq!(lp.get("/healthz").map(|x| x.0), Some(200));
    bao.resume();
    lp.wait(20, "/readyz 200 once vault answers again", |l| {
        l.readyz().0 == 200
    });
}

/// Writes the apply lock record as another certplane holding it would.
fn hold_lock(bao: &OpenBao, released: bool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (status, reply) = common::post(
        bao,
        "certplane/data/lock",
        &serde_json::json!({"data": {
            "holder": {"host": "ci-job-9", "pid": 77, "repository": "/builds/pki", "version": "0.1.0"},
            "since": now,
            "expires": now + 300,
            "released": released,
        }}),
    );
    assert_eq!(status, 200, "{reply}");
}

#[test]
fn run_waits_for_an_apply_lock_another_certplane_holds() {
    let bao = OpenBao::start();
    bao.bao_ok(&["secrets", "enable", "-path=certplane", "-version=2", "kv"]);
    hold_lock(&bao, false);
    let repo = GitRepo::homelab();
    repo.commit("homelab", None);
    let addr = bao.addr();
    let mut lp = start(
        &repo,
        &[],
        &[("VAULT_ADDR", &addr), ("VAULT_TOKEN", bao.token())],
    );
    // The plan has changes, the lock is held: nothing is written, and
    // /readyz says who holds it.
    lp.wait(30, "/readyz 503 naming the holder", |l| {
        let (code, body) = l.readyz();
        code == 503 && body.contains("another certplane is applying (holder ci-job-9 pid 77")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(role_ttl(&bao), None, "nothing applied under another's lock");
    assert!(
        read(&bao, "sys/mounts").unwrap().get("pki/").is_none(),
        "not even a mount"
    );
    // Released: the next interval applies.
    hold_lock(&bao, true);
    lp.wait(30, "the commit applied", |_| role_ttl(&bao) == Some(86400));
    lp.wait(10, "/readyz 200", |l| l.readyz().0 == 200);
    let record = read(&bao, "certplane/data/lock").unwrap();
    assert_eq!(record["data"]["released"], serde_json::json!(true));
    assert!(
        record["data"]["holder"]["repository"]
            .as_str()
            .is_some_and(|r| r.starts_with("file://") && r.ends_with("@main")),
        "{record}"
    );
}
