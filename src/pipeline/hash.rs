//! The repository's input, hashed: every YAML file the loader read and
//! every file their specs name. A saved plan (`plan --out`) records it, so
//! that `apply FILE` refuses a repository that changed; `watch` re-runs
//! only when it changes; the driver tells drift (the live state moved under
//! an input it applied) from a new input.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use crate::model::Repository;

/// Collects the paths a spec names: `{file: …}` sources and `…File` keys
/// (a manual intermediate's `certificateFile` also reads `<file>.csr`).
fn collect_paths(v: &Value, out: &mut BTreeSet<PathBuf>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if k == "file" || k.ends_with("File") => {
                        out.insert(PathBuf::from(s));
                        if k == "certificateFile" {
                            out.insert(PathBuf::from(format!("{s}.csr")));
                        }
                    }
                    _ => collect_paths(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_paths(x, out)),
        _ => {}
    }
}

/// The files the repository's objects name (sources, certificate and CA
/// files), resolved as the loader resolved them. The Vault connection of
/// `certplane.yaml` (token file, TLS files) is not repository input.
pub fn referenced_files(repo: &Repository) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for o in &repo.vault {
        collect_paths(&o.spec.spec_json(), &mut out);
    }
    for i in &repo.vault_issuers {
        collect_paths(
            &serde_json::to_value(&i.spec).unwrap_or(Value::Null),
            &mut out,
        );
    }
    if let Some(c) = &repo.config {
        let mut v = serde_json::to_value(&c.spec).unwrap_or(Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.remove("vault");
        }
        collect_paths(&v, &mut out);
    }
    out
}

/// SHA-256 over the repository's input, in path order: every YAML file the
/// loader read (its relative path and the digest of the bytes it read),
/// then every file the objects name (path relative to the root when inside
/// it, and its contents, or a marker when it does not exist). Nothing else:
/// a plan file, render output or notes next to the YAML do not change it.
pub fn repository_hash(repo: &Repository) -> Result<String, std::io::Error> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut put = |tag: &str, name: &str, bytes: &[u8]| {
        for part in [tag.as_bytes(), name.as_bytes(), bytes] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part);
        }
    };
    let mut yaml: Vec<_> = repo.files.iter().collect();
    yaml.sort_by(|a, b| a.path.cmp(&b.path));
    for f in yaml {
        let name = f.path.to_string_lossy().replace('\\', "/");
        put("yaml", &name, f.sha256.as_bytes());
    }
    for path in referenced_files(repo) {
        let name = path
            .strip_prefix(&repo.root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        match std::fs::read(&path) {
            Ok(bytes) => put("file", &name, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => put("missing", &name, b""),
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        }
    }
    let digest = ctx.finish();
    Ok(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_named_by_specs_are_collected() {
        let v = json!({"ca": {"import": {"pemBundleFrom": {"file": "/r/ca.pem"}}},
            "x": [{"certificateFile": "/r/int.pem"}], "y": {"env": "NOT_A_FILE"}});
        let mut out = BTreeSet::new();
        collect_paths(&v, &mut out);
        let got: Vec<_> = out.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(got, vec!["/r/ca.pem", "/r/int.pem", "/r/int.pem.csr"]);
    }
}
