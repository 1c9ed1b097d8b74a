//! `make demo` (scripts/demo.sh), run with this build against its own
//! throwaway OpenBao: it applies examples/homelab showing the plan once,
//! shows times as dates, and signs a CSR through `pki_int/sign/<role>` the
//! way cert-manager does, the chain checked by openssl.

use std::process::Command;

#[test]
fn the_demo_shows_the_plan_once_dates_and_signs_a_csr() {
    // The demo needs openssl (README, "Two commands on a fresh machine"):
    // without it this test fails rather than passing unrun.
    assert!(
        Command::new("openssl").arg("version").output().is_ok(),
        "the demo needs openssl on PATH"
    );
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/scripts/demo.sh"))
        .env("CERTPLANE_BIN", env!("CARGO_BIN_EXE_certplane"))
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .env("NO_COLOR", "1")
        .output()
        .expect("bash scripts/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The plan with changes is printed once (by apply), then the clean one.
    assert_eq!(
        stdout.matches("Plan: ").count(),
        1,
        "the plan printed more than once:\n{stdout}"
    );
    assert!(stdout.contains("Apply complete!"), "{stdout}");
    assert!(stdout.contains("No changes."), "{stdout}");
    // Signed through the sign path, from a CSR: no key from Vault.
    assert!(
        stdout.contains("sign a CSR through pki_int/sign/homelab-dot-local"),
        "{stdout}"
    );
    assert!(!stdout.contains("PRIVATE KEY"), "{stdout}");
    assert!(
        stdout.contains("demo.pem: OK"),
        "chain not verified:\n{stdout}"
    );
    assert!(stdout.contains("DNS:demo.homelab.local"), "{stdout}");
    // Times as dates, not epoch seconds.
    let expires = stdout
        .lines()
        .find(|l| l.starts_with("expires:"))
        .unwrap_or_else(|| panic!("no expires line:\n{stdout}"));
    let value = expires.trim_start_matches("expires:").trim();
    assert!(
        value.len() == "2026-01-01 00:00:00 UTC".len()
            && value.ends_with(" UTC")
            && value.as_bytes()[4] == b'-',
        "{expires}"
    );
    assert!(stdout.contains("notAfter="), "{stdout}");
}
