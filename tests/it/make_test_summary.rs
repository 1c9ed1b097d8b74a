//! `make test` ends with one line `N passed, N failed, N skipped` summed
//! over every test binary (scripts/test-summary.sh over the `cargo test`
//! log), exits non-zero when anything failed, and runs every binary
//! (`--no-fail-fast`) through scripts/test.sh, which `.ci/run` reaches via
//! `make test`; `make test-cluster` runs every test that needs a cluster.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the summary over `log` with `cargo test`'s exit `code`.
fn summary(log: &str, code: i32) -> (i32, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("test.log");
    std::fs::write(&file, log).unwrap();
    let out = Command::new("bash")
        .arg(root().join("scripts/test-summary.sh"))
        .arg(&file)
        .arg(code.to_string())
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

const OK: &str = "\
     Running unittests src/lib.rs (target/debug/deps/certplane-1)
running 3 tests
test a ... ok
test result: ok. 97 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.01s

     Running tests/plan.rs (target/debug/deps/plan-2)
test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.50s
";

#[test]
fn the_last_line_sums_every_binary() {
    let (code, lines) = summary(OK, 0);
    assert_eq!(code, 0);
    assert_eq!(lines.last().unwrap(), "109 passed, 0 failed, 3 skipped");
    assert_eq!(lines.len(), 1, "{lines:?}");
}

#[test]
fn a_failure_is_counted_and_exits_non_zero() {
    let log = format!(
        "{OK}test result: FAILED. 4 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 3.00s\n"
    );
    let (code, lines) = summary(&log, 101);
    assert_ne!(code, 0);
    assert_eq!(lines.last().unwrap(), "113 passed, 2 failed, 3 skipped");
}

#[test]
fn a_binary_that_did_not_finish_still_fails_the_run() {
    let (code, lines) = summary(OK, 101);
    assert_ne!(code, 0);
    assert!(
        lines[0].contains("did not build or did not finish"),
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap(), "109 passed, 0 failed, 3 skipped");
}

#[test]
fn make_test_runs_every_binary_then_the_summary() {
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let target = makefile
        .split("\ntest:")
        .nth(1)
        .and_then(|t| t.split("\n\n").next())
        .expect("a test target");
    assert!(target.contains("scripts/test.sh"), "{target}");
    let script = std::fs::read_to_string(root().join("scripts/test.sh")).unwrap();
    assert!(script.contains("--no-fail-fast"), "{script}");
    assert!(script.contains("scripts/test-summary.sh"), "{script}");
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(ci.contains("make test"), "{ci}");
}

/// `make test-cluster` runs the ignored tests of the one test binary whose
/// module paths match its filters: every test that needs a cluster must
/// match one (else it would never run anywhere), and no test that needs
/// only the CRD fixtures may (it would run, and fail, without them).
#[test]
fn make_test_cluster_runs_every_test_that_needs_a_cluster() {
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let target = makefile
        .split("\ntest-cluster:")
        .nth(1)
        .and_then(|t| t.split("\n\n").next())
        .expect("a test-cluster target");
    let command = target
        .lines()
        .find(|l| l.contains("--ignored"))
        .unwrap_or_else(|| panic!("no --ignored run in {target}"));
    assert!(command.contains("--test it "), "{command}");
    let filters: Vec<&str> = command
        .split_once(" -- ")
        .map(|(_, args)| args)
        .unwrap_or_default()
        .split_whitespace()
        .filter(|a| !a.starts_with('-'))
        .collect();
    assert!(!filters.is_empty(), "{command}");
    let mut gated = Vec::new();
    for entry in std::fs::read_dir(root().join("tests/it")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let matched = filters.iter().any(|f| module.contains(f));
        if text.contains("#[ignore = \"needs a test cluster") {
            assert!(
                matched,
                "{module} needs a cluster but {command} does not run it"
            );
            gated.push(module);
        } else if text.contains("crds_missing") {
            assert!(
                !matched,
                "{command} runs {module}, which needs only the CRDs"
            );
        }
    }
    for module in ["cluster_real", "cluster_real_pipeline", "lease_real"] {
        assert!(gated.iter().any(|g| g == module), "{module} in {gated:?}");
    }
}
