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
    /// Structural checks of cert-manager objects, then typed parsing.
    pub(super) fn structure(&mut self) {
        let repo = self.repo;
        for m in &repo.manifests {
            let api = m.spec["apiVersion"].as_str().unwrap_or_default();
            let kind = m.spec["kind"].as_str().unwrap_or_default();
            if group_of(api) == CERT_MANAGER_GROUP
                && let Some(schema) = crd::builtin(kind)
            {
                if api != crate::model::certmanager::CERT_MANAGER_V1 {
                    self.push(
                        &m.origin,
                        "apiVersion",
                        format!("{kind}: apiVersion {api} is not served by cert-manager"),
                        "use apiVersion: cert-manager.io/v1",
                    );
                    continue;
                }
                let errors = crd::check(schema, &m.spec);
                if !errors.is_empty() {
                    for e in errors {
                        self.push(
                            &m.origin,
                            &e.path,
                            format!("{kind} {}: {}", m.meta.name, e.message),
                            e.hint,
                        );
                    }
                    continue;
                }
            }
            match ClusterObject::from_manifest(&m.spec) {
                Ok(Some(obj)) => self.objs.push(Obj { m, obj }),
                Ok(None) => {}
                Err(e) => self.push(
                    &m.origin,
                    &e.path,
                    format!("{kind} {}: {}", m.meta.name, e.message),
                    "check the object's fields against the Kubernetes API reference",
                ),
            }
        }
    }

    /// An object generated from a VaultIssuer that is also written by hand.
    pub(super) fn generated_collisions(&mut self) {
        let repo = self.repo;
        let mut seen: HashMap<_, &Loaded<Value>> = HashMap::new();
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
