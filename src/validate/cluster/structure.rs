//! The structure of cert-manager objects: each is checked against the
//! built-in CRD schema ([`crate::validate::crd`]) before its typed form is
//! read; and an object generated from a `VaultIssuer` (or a reviewer
//! ServiceAccount) must not also be written by hand.

use std::collections::HashMap;

use serde_json::Value;

use super::{Checker, Obj};
use crate::expand::GENERATED_FROM;
use crate::load::{describe_key, manifest_key};
use crate::model::Loaded;
use crate::model::certmanager::{CERT_MANAGER_GROUP, ClusterObject, group_of};
use crate::validate::crd;

impl<'a> Checker<'a> {
    /// Structural checks of cert-manager objects, then typed parsing; each
    /// manifest on its own, on several threads for a long repository
    /// ([`read_all`]), the problems reported in the manifests' order.
    pub(super) fn structure(&mut self) {
        let repo = self.repo;
        for (m, read) in repo.manifests.iter().zip(read_all(&repo.manifests)) {
            match read {
                Read::Obj(obj) => self.objs.push(Obj { m, obj: *obj }),
                Read::Other => {}
                Read::Problems(problems) => {
                    for (path, message, hint) in problems {
                        self.push(&m.origin, &path, message, hint);
                    }
                }
            }
        }
    }

    /// An object generated from a VaultIssuer that is also written by hand.
    pub(super) fn generated_collisions(&self) {
        let repo = self.repo;
        let mut seen: HashMap<_, &Loaded<Value>> = HashMap::with_capacity(repo.manifests.len());
        for m in &repo.manifests {
            let key = manifest_key(m);
            match seen.get(&key) {
                None => {
                    seen.insert(key, m);
                }
                Some(first) => {
                    let generated =
                        |o: &Loaded<Value>| o.meta.annotations.get(GENERATED_FROM).cloned();
                    let (written, gen_obj, from) = match (generated(first), generated(m)) {
                        (None, Some(f)) => (*first, m, f),
                        (Some(f), None) => (m, *first, f),
                        // Two written: reported by the loader. Two generated:
                        // the VaultIssuers collide.
                        (None, None) => continue,
                        (Some(f), Some(_)) => (*first, m, f),
                    };
                    self.push(
                        &written.origin,
                        "metadata.name",
                        format!(
                            "{} is generated from {from} (at {}) and also declared here",
                            describe_key(&key),
                            gen_obj.origin.doc()
                        ),
                        "remove this object (the VaultIssuer writes it), or rename the VaultIssuer",
                    );
                }
            }
        }
        let mut vault_seen: HashMap<crate::addr::VaultAddr, &Loaded<crate::model::VaultObject>> =
            HashMap::new();
        for o in &repo.vault {
            let key = o.spec.address(&o.meta.name);
            if let Some(first) = vault_seen.get(&key) {
                let from_first = first.meta.annotations.get(GENERATED_FROM);
                let from_this = o.meta.annotations.get(GENERATED_FROM);
                let (written, generated, from) = match (from_first, from_this) {
                    (None, Some(f)) => (*first, o, f),
                    (Some(f), None) => (o, *first, f),
                    (Some(f), Some(_)) => (*first, o, f),
                    (None, None) => continue,
                };
                self.push(
                    &written.origin,
                    "metadata.name",
                    format!(
                        "{} {} is generated from {from} (at {}) and also declared here",
                        written.spec.kind(),
                        written.meta.name,
                        generated.origin.doc()
                    ),
                    "remove this object (the VaultIssuer writes it), or rename the VaultIssuer",
                );
            } else {
                vault_seen.insert(key, o);
            }
        }
    }
}

/// What reading one manifest found.
enum Read {
    /// A cert-manager object (or another kind certplane checks), typed.
    Obj(Box<ClusterObject>),
    /// A kind certplane does not check.
    Other,
    /// What is wrong with it: (field path, message, hint).
    Problems(Vec<(String, String, String)>),
}

/// Fewer manifests than this are read on the calling thread alone.
const PER_THREAD: usize = 256;

/// At most this many threads read manifests.
const THREADS: usize = 4;

/// [`read`] of every manifest, in order: on up to [`THREADS`] threads,
/// each a run of at least [`PER_THREAD`] manifests.
fn read_all(manifests: &[Loaded<Value>]) -> Vec<Read> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(THREADS)
        .min(manifests.len() / PER_THREAD)
        .max(1);
    if threads == 1 {
        return manifests.iter().map(read).collect();
    }
    let run = manifests.len().div_ceil(threads);
    std::thread::scope(|s| {
        let mut chunks = manifests.chunks(run);
        let first = chunks.next().unwrap_or_default();
        let others: Vec<_> = chunks
            .map(|c| s.spawn(move || c.iter().map(read).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<Read> = first.iter().map(read).collect();
        for h in others {
            match h.join() {
                Ok(part) => all.extend(part),
                // A check panicked: so does the validation, as it would have
                // on one thread.
                Err(e) => std::panic::resume_unwind(e),
            }
        }
        all
    })
}

/// One manifest: a cert-manager object is checked against its built-in
/// CRD schema before its typed form is read.
fn read(m: &Loaded<Value>) -> Read {
    let api = m.spec["apiVersion"].as_str().unwrap_or_default();
    let kind = m.spec["kind"].as_str().unwrap_or_default();
    if group_of(api) == CERT_MANAGER_GROUP
        && let Some(schema) = crd::builtin_schema(kind)
    {
        if api != crate::model::certmanager::CERT_MANAGER_V1 {
            return Read::Problems(vec![(
                "apiVersion".into(),
                format!("{kind}: apiVersion {api} is not served by cert-manager"),
                "use apiVersion: cert-manager.io/v1".into(),
            )]);
        }
        let errors = schema.check(&m.spec);
        if !errors.is_empty() {
            return Read::Problems(
                errors
                    .into_iter()
                    .map(|e| {
                        let message = format!("{kind} {}: {}", m.meta.name, e.message);
                        (e.path, message, e.hint)
                    })
                    .collect(),
            );
        }
    }
    match ClusterObject::from_manifest(&m.spec) {
        Ok(Some(obj)) => Read::Obj(Box::new(obj)),
        Ok(None) => Read::Other,
        Err(e) => Read::Problems(vec![(
            e.path,
            format!("{kind} {}: {}", m.meta.name, e.message),
            "check the object's fields against the Kubernetes API reference".into(),
        )]),
    }
}
