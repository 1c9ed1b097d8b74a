//! Every example's Vault half applies to a real OpenBao and converges (the
//! cluster half is rendered to files: no cluster here), and a second plan
//! has no changes. istio-tsb delivers its intermediate's exported key to a
//! cluster Secret, which needs a cluster: rendered, it applies nothing.

use crate::common;

use crate::common::certplane_root;
use common::OpenBao;

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
        if dir.ends_with("istio-tsb") {
            // Its intermediate's key goes to a cluster Secret, never to
            // files: with the cluster half rendered, nothing is applied.
            let refused = certplane_root(&bao, &["apply", "--auto-approve", d]);
            assert_eq!(refused.code, 1, "{d}: apply\n{}", refused.both());
            assert!(
                refused
                    .stdout
                    .contains("a key is never written to files, so not with --render"),
                "{d}\n{}",
                refused.both()
            );
            assert!(
                !bao.bao(&["read", "sys/mounts/istioca"]).status.success(),
                "{d}: nothing applied"
            );
            continue;
        }
        let applied = certplane_root(&bao, &["apply", "--auto-approve", d]);
        assert_eq!(applied.code, 0, "{d}: apply\n{}", applied.both());
        let again = certplane_root(&bao, &["plan", d]);
        assert_eq!(again.code, 0, "{d}: second plan\n{}", again.both());
        assert!(again.stdout.contains("No changes"), "{d}\n{}", again.both());
    }
}
