//! Every example's Vault half applies to a real OpenBao and converges (the
//! cluster half is rendered to files: no cluster here), and a second plan
//! has no changes.

mod common;
#[path = "e2e/support.rs"]
mod support;

use common::OpenBao;
use support::certplane_root;

#[test]
fn every_example_applies_and_converges() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dirs: Vec<_> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "ci"))
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 7,
        "expected the seed flows under examples/: {dirs:?}"
    );
    for dir in dirs {
        let bao = OpenBao::start();
        let d = dir.to_str().unwrap();
        let applied = certplane_root(&bao, &["apply", "--auto-approve", d]);
        assert_eq!(applied.code, 0, "{d}: apply\n{}", applied.both());
        let again = certplane_root(&bao, &["plan", d]);
        assert_eq!(again.code, 0, "{d}: second plan\n{}", again.both());
        assert!(again.stdout.contains("No changes"), "{d}\n{}", again.both());
    }
}
