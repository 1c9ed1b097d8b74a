//! `PkiMount.spec.trustBundle`: where a mount's CA trust bundle is
//! published ([`crate::cluster::trust`]). It names at least one object; each
//! name is one Kubernetes accepts; the mount has a CA to publish; no object
//! is published twice, nor also declared as a manifest (two owners would
//! overwrite each other).

use std::collections::BTreeMap;

use super::{dns_label_problem, dns_subdomain_problem};
use crate::diagnostic::Diagnostic;
use crate::model::Repository;

/// Why `key` is not a ConfigMap data key, if it is not.
fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("is empty")
    } else if key.len() > 253 {
        Some("is longer than 253 characters")
    } else if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("is not a ConfigMap key (letters, digits, '-', '_' and '.')")
    } else if key == "." || key == ".." {
        Some("is not a ConfigMap key")
    } else {
        None
    }
}

const NAME_HINT: &str = "use lowercase letters, digits and '-' (and '.' in a name)";

/// Every problem of the repository's trust bundle declarations.
pub(super) fn check(repo: &Repository, out: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (meta, origin, spec) in repo.pki_mounts() {
        let Some(tb) = &spec.trust_bundle else {
            continue;
        };
        let base = "spec.trustBundle";
        let mut push = |path: &str, message: String, hint: &str| {
            out.push(Diagnostic::new(origin.at(path), message).hint(hint));
        };
        if tb.config_map.is_none() && tb.bundle.is_none() {
            push(
                base,
                format!(
                    "mount {}: trustBundle names no object to publish to",
                    meta.name
                ),
                "add `configMap: {namespace: ..., name: ...}`, a trust-manager `bundle: {name: ...}`, or both",
            );
        }
        if spec.ca.is_none() && (tb.config_map.is_some() || tb.bundle.is_some()) {
            push(
                base,
                format!(
                    "mount {}: trustBundle without a CA (spec.ca) to publish",
                    meta.name
                ),
                "declare the mount's CA (spec.ca), or remove trustBundle",
            );
        }
        let mut names: Vec<(String, &str, &str, Option<&'static str>)> = Vec::new();
        if let Some(cm) = &tb.config_map {
            names.push((
                format!("{base}.configMap.namespace"),
                "namespace",
                &cm.namespace,
                dns_label_problem(&cm.namespace),
            ));
            names.push((
                format!("{base}.configMap.name"),
                "name",
                &cm.name,
                dns_subdomain_problem(&cm.name),
            ));
            names.push((
                format!("{base}.configMap.key"),
                "key",
                &cm.key,
                key_problem(&cm.key),
            ));
        }
        if let Some(b) = &tb.bundle {
            names.push((
                format!("{base}.bundle.name"),
                "name",
                &b.name,
                dns_subdomain_problem(&b.name),
            ));
            names.push((
                format!("{base}.bundle.key"),
                "key",
                &b.key,
                key_problem(&b.key),
            ));
        }
        for (path, field, value, problem) in names {
            if let Some(why) = problem {
                let hint = if field == "key" {
                    "use letters, digits, '-', '_' and '.' (e.g. ca.crt)"
                } else {
                    NAME_HINT
                };
                push(
                    &path,
                    format!("mount {}: trustBundle {field} {value:?} {why}", meta.name),
                    hint,
                );
            }
        }
        let objects = [
            tb.config_map.as_ref().map(|cm| {
                (
                    format!("{base}.configMap.name"),
                    (
                        "v1",
                        "ConfigMap",
                        Some(cm.namespace.as_str()),
                        cm.name.as_str(),
                    ),
                )
            }),
            tb.bundle.as_ref().map(|b| {
                (
                    format!("{base}.bundle.name"),
                    (
                        crate::cluster::trust::BUNDLE_API_VERSION,
                        "Bundle",
                        None,
                        b.name.as_str(),
                    ),
                )
            }),
        ];
        for (path, (api, kind, ns, name)) in objects.into_iter().flatten() {
            let shown = match ns {
                Some(ns) => format!("{kind} {ns}/{name}"),
                None => format!("{kind} {name}"),
            };
            if let Some(first) = seen.get(&shown) {
                push(
                    &path,
                    format!(
                        "mount {}: trustBundle {shown} is also where mount {first} publishes its bundle",
                        meta.name
                    ),
                    "publish each mount's bundle to an object of its own",
                );
            } else {
                seen.insert(shown.clone(), meta.name.clone());
            }
            let declared = repo.manifests.iter().find(|m| {
                m.spec["apiVersion"] == api
                    && m.spec["kind"] == kind
                    && m.spec["metadata"]["name"] == name
                    && ns.is_none_or(|ns| m.spec["metadata"]["namespace"] == ns)
            });
            if let Some(m) = declared {
                let at = m.origin.at("metadata.name");
                push(
                    &path,
                    format!(
                        "mount {}: trustBundle {shown} is also declared at {at}",
                        meta.name
                    ),
                    "certplane writes the trust bundle's object itself: remove the declared one, or publish to another name",
                );
            }
        }
    }
}
