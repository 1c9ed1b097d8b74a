//! Build script: tells the tests where the cert-manager CRD fixtures are and
//! whether they are there.
//!
//! Four tests compare certplane's built-in cert-manager schemas (and its
//! discovery) with the real cert-manager CRDs, which are test data outside
//! this repository: `CERTPLANE_CRDS_DIR` names their directory (relative
//! paths are relative to this crate), by default
//! `../shared/fixtures/cert-manager-crds`. Without them those tests are
//! reported as ignored (cfg `crds_missing`), never as passed; under CI
//! (`CI=true`) they run anyway, and a missing fixture fails them.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CERTPLANE_CRDS_DIR");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rustc-check-cfg=cfg(crds_missing)");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = match std::env::var("CERTPLANE_CRDS_DIR") {
        Ok(d) if !d.trim().is_empty() => manifest.join(d.trim()),
        _ => manifest.join("../shared/fixtures/cert-manager-crds"),
    };
    println!("cargo::rustc-env=CERTPLANE_CRDS_FIXTURES={}", dir.display());
    let present = dir.join("cert-manager.io_issuers.yaml").is_file();
    if present {
        // Notice the fixtures changing or going away.
        println!("cargo::rerun-if-changed={}", dir.display());
    }
    let ci = std::env::var("CI").is_ok_and(|v| matches!(v.trim(), "true" | "1"));
    if !present && !ci {
        println!("cargo::rustc-cfg=crds_missing");
    }
}
