//! A manifest's value built while its file is split (one parse) is the
//! value serde-saphyr reads from it, over every YAML document of the
//! repository (examples, deploy manifests, test repositories) and of the
//! real cert-manager CRDs; and a manifest that is not built is still read.

use std::path::{Path, PathBuf};

use certplane::load::yaml::{deserialize, split};
use serde_json::Value;

/// Every `.yaml`/`.yml` file under `dir`.
fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

/// (documents built, documents read by serde-saphyr alone) over `files`;
/// panics where a built value is not serde-saphyr's.
fn compare(files: &[PathBuf]) -> (usize, usize) {
    let (mut built, mut left) = (0, 0);
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let Ok(docs) = split(&text) else { continue };
        for doc in &docs {
            let read = deserialize::<Value>(&text, doc);
            match doc.value.take() {
                Some(v) => {
                    built += 1;
                    let read = read.unwrap_or_else(|e| {
                        panic!(
                            "{}:{}: built, but serde-saphyr refuses it: {e:?}",
                            file.display(),
                            doc.start_pos.0
                        )
                    });
                    assert_eq!(v, read, "{}:{}", file.display(), doc.start_pos.0);
                }
                None => left += 1,
            }
        }
    }
    (built, left)
}

#[test]
fn the_repository_s_own_manifests_are_built_as_serde_saphyr_reads_them() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["examples", "deploy", "tests"] {
        yaml_files(&root.join(dir), &mut files);
    }
    let (built, left) = compare(&files);
    // The examples' cluster manifests alone are dozens; certplane's own
    // documents are never built.
    assert!(built >= 20, "only {built} documents built ({left} left)");
    assert!(left >= 20, "only {left} documents left to serde-saphyr");
}

#[test]
#[cfg_attr(
    crds_missing,
    ignore = "needs the cert-manager CRD fixtures: set CERTPLANE_CRDS_DIR (see README, Development)"
)]
fn the_cert_manager_crds_are_built_as_serde_saphyr_reads_them() {
    let mut files = Vec::new();
    yaml_files(Path::new(env!("CERTPLANE_CRDS_FIXTURES")), &mut files);
    assert!(!files.is_empty(), "no CRD fixtures");
    let (built, _) = compare(&files);
    assert!(built >= 6, "only {built} CRDs built");
}

#[test]
fn a_manifest_that_is_not_built_is_read_all_the_same() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("certplane.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nmetadata: {name: t}\nspec: {}\n",
    )
    .unwrap();
    // One built, one with an anchor (left to serde-saphyr), one whose
    // first key is not apiVersion: all three load, with the same values.
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: n}\ndata: {x: '1', y: 2160h}\n\
         ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: n}\ndata: {x: &v '1', y: *v}\n\
         ---\nkind: ConfigMap\napiVersion: v1\nmetadata: {name: c, namespace: n}\ndata: {x: '1'}\n",
    )
    .unwrap();
    let repo = certplane::load::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let data: Vec<&Value> = repo.manifests.iter().map(|m| &m.spec["data"]).collect();
    assert_eq!(
        data,
        [
            &serde_json::json!({"x": "1", "y": "2160h"}),
            &serde_json::json!({"x": "1", "y": "1"}),
            &serde_json::json!({"x": "1"}),
        ]
    );
}
