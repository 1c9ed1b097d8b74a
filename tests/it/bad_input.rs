//! The bad-input suite: every directory under `tests/bad/` is an invalid
//! repository with an `expect.txt` line `<file>:<line>: <message part>`.
//!
//! Each case is checked twice: in-process (`load`, the operator's checks of
//! `certplane.yaml`, `expand`, `validate` must report a diagnostic at that
//! file and line containing the text, for an operator with the same
//! `VAULT_ADDR` and `VAULT_TOKEN` as the binary's), and
//! through the real binary (`certplane apply --auto-approve` must exit 1,
//! print the same on stderr, and never connect to Vault: a loopback
//! listener posing as `VAULT_ADDR` must accept zero connections).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use certplane::diagnostic::Diagnostic;
use certplane::operator::Operator;
use certplane::vault::connect::{Env, Trust, VaultFlags};

use crate::common::{self, decoy::Decoy};

/// Environment variables a case relies on being unset.
const UNSET_VARS: &[&str] = &[
    "CERTPLANE_VAR_TEST_SURELY_UNSET_BUNDLE",
    "CERTPLANE_VAR_TEST_UNUSED_KEY",
];

/// The address the binary is given (a listener that must see nothing);
/// the in-process checks use the same operator settings.
const OPERATOR_ADDR: &str = "http://127.0.0.1:1";

struct Case {
    name: String,
    /// A private copy of the case directory (some cases generate files).
    dir: tempfile::TempDir,
    file: String,
    line: usize,
    text: String,
}

fn cases_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad")
}

/// A self-signed CA certificate (no key written anywhere) with pathlen 0.
fn pathlen_zero_ca_pem() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "Offline Root (pathlen 0)");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.self_signed(&key).unwrap().pem()
}

/// Files some cases need that are generated rather than committed
/// (certificates, and symbolic links, which a plain copy would follow).
fn prepare(name: &str, dir: &Path) {
    use std::os::unix::fs::symlink;
    match name {
        "external_parent_pathlen_zero" => {
            std::fs::create_dir_all(dir.join("offline")).unwrap();
            std::fs::write(dir.join("offline/root.pem"), pathlen_zero_ca_pem()).unwrap();
        }
        "file_source_symlink_out" => symlink("/etc/passwd", dir.join("ca.pem")).unwrap(),
        "symlink_yaml_out" => symlink("/etc/passwd", dir.join("outside.yaml")).unwrap(),
        "symlink_dir_out" => symlink("/etc", dir.join("shared")).unwrap(),
        "symlink_loop" => symlink("..", dir.join("sub/again")).unwrap(),
        _ => {}
    }
}

fn cases() -> Vec<Case> {
    let mut names: Vec<String> = std::fs::read_dir(cases_root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let src = cases_root().join(&name);
            let expect = std::fs::read_to_string(src.join("expect.txt"))
                .unwrap_or_else(|e| panic!("{name}: expect.txt: {e}"));
            let expect = expect.trim();
            let (place, text) = expect
                .split_once(": ")
                .unwrap_or_else(|| panic!("{name}: expect.txt must be `<file>:<line>: <text>`"));
            let (file, line) = place
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("{name}: expect.txt must be `<file>:<line>: <text>`"));
            let dir = tempfile::tempdir().unwrap();
            common::copy_dir(&src, dir.path());
            std::fs::remove_file(dir.path().join("expect.txt")).unwrap();
            prepare(&name, dir.path());
            Case {
                name,
                dir,
                file: file.to_string(),
                line: line.parse().unwrap(),
                text: text.to_string(),
            }
        })
        .collect()
}

/// The operator the binary runs with (`VAULT_ADDR`, `VAULT_TOKEN`, no
/// flags, no `~/.vault-token`).
fn operator() -> Operator {
    let var = |n: &str| match n {
        "VAULT_ADDR" => Some(OPERATOR_ADDR.to_string()),
        "VAULT_TOKEN" => Some("test".to_string()),
        _ => None,
    };
    let env = Env {
        var: &var,
        home: None,
    };
    Operator::resolve(&VaultFlags::default(), &[], Trust::FillIn, &env).unwrap()
}

/// What the pipeline reports before any network: load, the operator's
/// checks of the Config, expand the VaultIssuers, validate.
fn diagnostics(dir: &Path) -> Vec<Diagnostic> {
    match certplane::pipeline::prepare_for(dir, &operator()) {
        Err(d) => d.0,
        Ok(_) => Vec::new(),
    }
}

fn matches(case: &Case, d: &Diagnostic) -> bool {
    d.location.file.ends_with(&case.file)
        && d.location.line == case.line
        && d.to_string().contains(&case.text)
}

#[test]
fn there_are_at_least_thirty_cases() {
    assert!(cases().len() >= 30, "only {} cases", cases().len());
}

#[test]
fn load_and_validate_reject_every_case_at_the_expected_place() {
    for var in UNSET_VARS {
        assert!(std::env::var_os(var).is_none(), "{var} must not be set");
    }
    let mut failures = Vec::new();
    for case in cases() {
        let diags = diagnostics(case.dir.path());
        if !diags.iter().any(|d| matches(&case, d)) {
            failures.push(format!(
                "{}: expected {}:{}: {:?}, got:\n{}",
                case.name,
                case.file,
                case.line,
                case.text,
                if diags.is_empty() {
                    "  (no diagnostic)".to_string()
                } else {
                    diags
                        .iter()
                        .map(|d| format!("  {d}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            ));
        }
        // Every diagnostic says how to fix it.
        for d in &diags {
            if d.hint.as_deref().is_none_or(str::is_empty) {
                failures.push(format!("{}: diagnostic without a hint: {d}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs the binary with a deadline; returns (exit code, stderr).
fn run_apply(dir: &Path, vault: &str) -> (Option<i32>, String) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = common::command(home.path());
    cmd.args(["apply", "--auto-approve"])
        .arg(dir)
        .env("VAULT_ADDR", vault)
        .env("VAULT_TOKEN", "test");
    for var in UNSET_VARS {
        cmd.env_remove(var);
    }
    let mut child = cmd.spawn().expect("run certplane");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_binary_exits_1_with_the_diagnostic_and_never_contacts_vault() {
    let vault = Decoy::start();
    let mut failures = Vec::new();
    for case in cases() {
        let (code, stderr) = run_apply(case.dir.path(), &vault.addr());
        let place = format!("{}:{}:", case.file, case.line);
        let shown = stderr.lines().enumerate().any(|(i, l)| {
            l.contains(&place)
                && (l.contains(&case.text)
                    || stderr
                        .lines()
                        .nth(i + 1)
                        .is_some_and(|h| h.contains(&case.text)))
        });
        if code != Some(1) || !shown {
            failures.push(format!(
                "{}: want exit 1 and `{place} ... {}` on stderr; got exit {code:?}, stderr:\n{stderr}",
                case.name, case.text
            ));
        }
    }
    // Give a late connection attempt a moment to land before counting.
    std::thread::sleep(Duration::from_millis(100));
    let connections = vault.connections();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(connections, 0, "Vault received {connections} connection(s)");
}
