//! The settings of a PkiMount beside its CA, and the CA's rotation window:
//!
//! - `rotateBefore` must be shorter than the CA's `ttl` (else every run
//!   would find the CA inside its window and mint another);
//! - the CA's `settings`: `leafNotAfterBehavior: permit` is refused (leaves
//!   that outlive their CA fail verification once it expires), a
//!   `manualChain` starts with the CA itself, URLs are http(s) (or
//!   templates, with `enableAiaUrlTemplating` and a `cluster` path);
//! - `cluster` URLs, and ACME: `acme.enabled` needs `cluster.path`;
//! - a cert-manager ACME `Issuer`/`ClusterIssuer` whose `spec.acme.server`
//!   is a directory of a declared PkiMount is checked with it as one unit:
//!   the mount serves ACME, the URL is `<cluster.path>/acme/directory` (or
//!   `…/roles/<role>/acme/directory`, `…/issuer/<ref>/acme/directory`),
//!   the role and issuer it names are declared and allowed, and an account
//!   binding is given when the mount requires one.

use serde_json::Value;

use super::is_http_url;
use crate::diagnostic::{Diagnostic, suggest};
use crate::model::certmanager::group_of;
use crate::model::{CaSpec, Duration, LeafNotAfterBehavior, Origin, PkiMountSpec, Repository};
use crate::vault::kinds::ca_issuer_name;
use crate::vault::kinds::pki_settings::{acme_enabled, ca_settings};

pub(super) fn check(repo: &Repository, out: &mut Vec<Diagnostic>) {
    let mut push = |origin: &Origin, at: &str, message: String, hint: String| {
        out.push(Diagnostic::new(origin.at(at), message).hint(hint));
    };
    for (meta, origin, spec) in repo.pki_mounts() {
        let name = meta.name.as_str();
        rotation_window(name, origin, spec, &mut push);
        issuer_settings(name, origin, spec, &mut push);
        cluster_and_acme(name, origin, spec, &mut push);
    }
    acme_issuers(repo, &mut push);
}

type Push<'a> = dyn FnMut(&Origin, &str, String, String) + 'a;

/// `rotateBefore` against the CA's lifetime; `rotation.followParent` only
/// where a parent mount signs the CA.
fn rotation_window(name: &str, origin: &Origin, spec: &PkiMountSpec, push: &mut Push<'_>) {
    let (follow, at, signed_by_mount) = match &spec.ca {
        Some(CaSpec::Root(r)) => (
            r.rotation.as_ref().and_then(|r| r.follow_parent),
            "spec.ca.root.rotation.followParent",
            false,
        ),
        Some(CaSpec::Intermediate(i)) => (
            i.rotation.as_ref().and_then(|r| r.follow_parent),
            "spec.ca.intermediate.rotation.followParent",
            matches!(i.signed_by, crate::model::SignedBy::Mount(_)),
        ),
        _ => (None, "", true),
    };
    if let Some(f) = follow
        && !signed_by_mount
    {
        push(
            origin,
            at,
            format!(
                "mount {name}: rotation.followParent {} is set, but no PkiMount signs this CA: \
                 it only says how an intermediate follows a rotation of the mount in its \
                 signedBy",
                f.as_str()
            ),
            "remove followParent, or sign the intermediate by another PkiMount \
             (signedBy: {mount: ...})"
                .into(),
        );
    }
    let (ttl, rotate, at) = match &spec.ca {
        Some(CaSpec::Root(r)) => (r.ttl, r.rotate_before, "spec.ca.root.rotateBefore"),
        Some(CaSpec::Intermediate(i)) => {
            (i.ttl, i.rotate_before, "spec.ca.intermediate.rotateBefore")
        }
        _ => return,
    };
    let Some(rotate) = rotate else { return };
    match ttl {
        Some(ttl) if rotate >= ttl => push(
            origin,
            at,
            format!(
                "mount {name}: rotateBefore {rotate} is not shorter than the CA's ttl {ttl}: \
                 a new CA would be inside its rotation window from the start, and every run \
                 would make another"
            ),
            format!(
                "lower rotateBefore to a fraction of the ttl (e.g. {}), or raise the ttl",
                Duration::from_secs(ttl.as_secs() / 3)
            ),
        ),
        None => push(
            origin,
            at,
            format!("mount {name}: rotateBefore {rotate} is set but the CA has no ttl"),
            "set the CA's ttl, so the window can be checked against the lifetime".into(),
        ),
        Some(_) => {}
    }
}

/// Whether `u` is a URL Vault can use: http(s), or a template when
/// templating is on.
fn url_ok(u: &str, templated: bool) -> bool {
    if templated && u.contains("{{") {
        return u.starts_with("{{") || is_http_url(u);
    }
    is_http_url(u)
}

/// The CA's `settings`.
fn issuer_settings(name: &str, origin: &Origin, spec: &PkiMountSpec, push: &mut Push<'_>) {
    let Some(ca) = &spec.ca else { return };
    let Some((s, base)) = ca_settings(ca) else {
        return;
    };
    if s.leaf_not_after_behavior == Some(LeafNotAfterBehavior::Permit) {
        push(
            origin,
            &format!("{base}.leafNotAfterBehavior"),
            format!(
                "mount {name}: leafNotAfterBehavior permit issues leaves that outlive their CA; \
                 they fail verification once the CA expires"
            ),
            "use err (refuse such leaves, Vault's default) or truncate (cut them to the CA's notAfter)"
                .into(),
        );
    }
    if let Some(usage) = &s.usage
        && usage.is_empty()
    {
        push(
            origin,
            &format!("{base}.usage"),
            format!("mount {name}: usage is empty"),
            "list what the issuer may do: read-only, issuing-certificates, crl-signing, ocsp-signing"
                .into(),
        );
    }
    if let Some(chain) = &s.manual_chain
        && let Some(first) = chain.first()
    {
        match ca_issuer_name(ca) {
            None => push(
                origin,
                &format!("{base}.manualChain"),
                format!("mount {name}: manualChain needs the CA's issuerName, to list it first"),
                "set issuerName on the CA and make it the first entry of manualChain".into(),
            ),
            Some(own) if first != own => push(
                origin,
                &format!("{base}.manualChain[0]"),
                format!(
                    "mount {name}: manualChain starts with {first}, not with the issuer itself ({own})"
                ),
                format!("Vault requires the chain to start with the issuer: put {own} first"),
            ),
            Some(_) => {}
        }
    }
    let templated = s.enable_aia_url_templating == Some(true);
    for (field, list) in [
        ("issuingCertificates", &s.issuing_certificates),
        ("crlDistributionPoints", &s.crl_distribution_points),
        ("ocspServers", &s.ocsp_servers),
    ] {
        for (i, u) in list.iter().flatten().enumerate() {
            if !url_ok(u, templated) {
                let hint = if u.contains("{{") {
                    "a template needs enableAiaUrlTemplating: true".to_string()
                } else {
                    format!("write it as http://vault.example.com:8200/v1/{name}/issuer/<ref>/der")
                };
                push(
                    origin,
                    &format!("{base}.{field}[{i}]"),
                    format!("mount {name}: {u:?} is not an http(s) URL"),
                    hint,
                );
            }
        }
    }
    if templated
        && spec
            .cluster
            .as_ref()
            .is_none_or(|c| c.path.is_none() && c.aia_path.is_none())
    {
        push(
            origin,
            &format!("{base}.enableAiaUrlTemplating"),
            format!(
                "mount {name}: enableAiaUrlTemplating needs the mount's cluster path \
                 ({{{{cluster_path}}}}, {{{{cluster_aia_path}}}})"
            ),
            format!("set cluster.path (and cluster.aiaPath) of PkiMount {name}"),
        );
    }
}

/// `cluster` URLs, and what ACME needs of the mount.
fn cluster_and_acme(name: &str, origin: &Origin, spec: &PkiMountSpec, push: &mut Push<'_>) {
    if let Some(c) = &spec.cluster {
        for (field, v) in [("path", &c.path), ("aiaPath", &c.aia_path)] {
            if let Some(u) = v
                && !is_http_url(u)
            {
                push(
                    origin,
                    &format!("spec.cluster.{field}"),
                    format!("mount {name}: cluster {field} {u:?} is not an http(s) URL"),
                    format!("write the mount's URL: https://vault.example.com:8200/v1/{name}"),
                );
            }
        }
    }
    if acme_enabled(spec)
        && spec
            .cluster
            .as_ref()
            .and_then(|c| c.path.as_ref())
            .is_none()
    {
        push(
            origin,
            "spec.acme.enabled",
            format!("mount {name}: ACME needs the mount's cluster path (config/cluster path)"),
            format!(
                "set cluster.path of PkiMount {name} to its URL as ACME clients reach it \
                 (https://vault.example.com:8200/v1/{name})"
            ),
        );
    }
    if let Some(a) = &spec.acme {
        for (field, v, allowed) in [
            (
                "eabPolicy",
                &a.eab_policy,
                &["not-required", "new-account-required", "always-required"][..],
            ),
            (
                "defaultDirectoryPolicy",
                &a.default_directory_policy,
                &[][..],
            ),
        ] {
            let Some(v) = v else { continue };
            let ok = if allowed.is_empty() {
                matches!(v.as_str(), "sign-verbatim" | "forbid") || v.starts_with("role:")
            } else {
                allowed.contains(&v.as_str())
            };
            if !ok {
                let choices = if allowed.is_empty() {
                    "sign-verbatim, forbid or role:<name>".to_string()
                } else {
                    allowed.join(", ")
                };
                push(
                    origin,
                    &format!("spec.acme.{field}"),
                    format!("mount {name}: {field} {v:?} is not one Vault knows"),
                    format!("use {choices}"),
                );
            }
        }
    }
}

/// A directory of a Vault PKI mount, as an ACME server URL names it.
#[derive(Debug, PartialEq, Eq)]
struct Directory {
    /// The URL before the mount's directory part (what `cluster.path` must
    /// be).
    base: String,
    /// The mount.
    mount: String,
    /// `…/issuer/<ref>/…`.
    issuer: Option<String>,
    /// `…/roles/<role>/…`.
    role: Option<String>,
}

/// Splits an ACME server URL that ends in `/acme/directory`, for each
/// mount path it could name: the candidates whose mount `is_mount` accepts.
fn directory(server: &str, is_mount: impl Fn(&str) -> bool) -> Option<Directory> {
    let rest = server
        .trim_end_matches('/')
        .strip_suffix("/acme/directory")?;
    let (scheme, after) = rest.split_once("://")?;
    let (host, path) = after.split_once('/')?;
    let segs: Vec<&str> = path.split('/').collect();
    let v1 = segs.iter().position(|s| *s == "v1")?;
    let api = &segs[v1 + 1..];
    let n = api.len();
    // <mount>, <mount>/roles/<r>, <mount>/issuer/<i>, <mount>/issuer/<i>/roles/<r>.
    let mut shapes: Vec<(usize, Option<String>, Option<String>)> = vec![(n, None, None)];
    if n >= 3 && api[n - 2] == "roles" {
        shapes.push((n - 2, None, Some(api[n - 1].to_string())));
        if n >= 5 && api[n - 4] == "issuer" {
            shapes.push((
                n - 4,
                Some(api[n - 3].to_string()),
                Some(api[n - 1].to_string()),
            ));
        }
    }
    if n >= 3 && api[n - 2] == "issuer" {
        shapes.push((n - 2, Some(api[n - 1].to_string()), None));
    }
    shapes.into_iter().find_map(|(end, issuer, role)| {
        let mount = api[..end].join("/");
        is_mount(&mount).then(|| Directory {
            base: format!("{scheme}://{host}/{}", segs[..=v1 + end].join("/")),
            mount,
            issuer,
            role,
        })
    })
}

/// cert-manager ACME issuers pointing at a declared PkiMount.
fn acme_issuers(repo: &Repository, push: &mut Push<'_>) {
    for m in &repo.manifests {
        let v = &m.spec;
        let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
        if group_of(api) != "cert-manager.io" || !matches!(kind, "Issuer" | "ClusterIssuer") {
            continue;
        }
        let Some(acme) = v.pointer("/spec/acme") else {
            continue;
        };
        let Some(server) = acme.get("server").and_then(Value::as_str) else {
            continue;
        };
        let Some(dir) = directory(server, |p| repo.pki_mount(p).is_some()) else {
            continue;
        };
        let Some((_, _, spec)) = repo.pki_mount(&dir.mount) else {
            continue;
        };
        let what = match (kind, &m.meta.namespace) {
            ("Issuer", Some(ns)) => format!("Issuer {ns}/{}", m.meta.name),
            _ => format!("{kind} {}", m.meta.name),
        };
        let mount = dir.mount.as_str();
        let origin = &m.origin;
        let at = "spec.acme.server";
        if !acme_enabled(spec) {
            push(
                origin,
                at,
                format!(
                    "{what}: ACME server {server} is PkiMount {mount}, which does not serve ACME"
                ),
                format!("set acme: {{enabled: true}} (and cluster.path) on PkiMount {mount}"),
            );
            continue;
        }
        if let Some(path) = spec.cluster.as_ref().and_then(|c| c.path.as_deref())
            && path.trim_end_matches('/') != dir.base
        {
            push(
                origin,
                at,
                format!(
                    "{what}: ACME server {server} does not match PkiMount {mount}'s cluster path {path}: \
                     Vault's ACME directory lists URLs under the cluster path"
                ),
                format!(
                    "point the issuer at {}{}/acme/directory, or set cluster.path of PkiMount {mount} to {}",
                    path.trim_end_matches('/'),
                    suffix(&dir),
                    dir.base
                ),
            );
        }
        let a = spec.acme.as_ref().cloned().unwrap_or_default();
        if let Some(role) = &dir.role {
            let declared: Vec<&str> = repo
                .pki_roles()
                .filter(|(_, _, r)| r.mount.trim_matches('/') == mount)
                .map(|(rm, _, _)| rm.name.as_str())
                .collect();
            if !declared.contains(&role.as_str()) {
                push(
                    origin,
                    at,
                    format!(
                        "{what}: ACME directory names role {role}, not a PkiRole of mount {mount}"
                    ),
                    suggest::did_you_mean(role, declared.iter().copied()),
                );
            } else if let Some(allowed) = &a.allowed_roles
                && !allowed.iter().any(|r| r == "*" || r == role)
            {
                push(
                    origin,
                    at,
                    format!("{what}: role {role} is not in acme.allowedRoles of PkiMount {mount}"),
                    format!("add {role} to allowedRoles, or use a directory of an allowed role"),
                );
            }
        } else if a.default_directory_policy.as_deref() == Some("forbid") {
            push(
                origin,
                at,
                format!(
                    "{what}: PkiMount {mount} forbids its default ACME directories \
                     (defaultDirectoryPolicy: forbid)"
                ),
                format!("use {}/roles/<role>/acme/directory", dir.base),
            );
        }
        if let Some(issuer) = &dir.issuer
            && let Some(allowed) = &a.allowed_issuers
            && !allowed.iter().any(|i| i == "*" || i == issuer)
        {
            push(
                origin,
                at,
                format!(
                    "{what}: issuer {issuer} is not in acme.allowedIssuers of PkiMount {mount}"
                ),
                format!("add {issuer} to allowedIssuers of PkiMount {mount}"),
            );
        }
        let eab_required = matches!(
            a.eab_policy.as_deref(),
            Some("new-account-required" | "always-required")
        );
        if eab_required && acme.get("externalAccountBinding").is_none() {
            push(
                origin,
                "spec.acme",
                format!(
                    "{what}: PkiMount {mount} requires an external account binding (eabPolicy {}) \
                     and the issuer has none",
                    a.eab_policy.as_deref().unwrap_or_default()
                ),
                format!(
                    "create one with `bao write -f {mount}/acme/new-eab` and give the issuer \
                     spec.acme.externalAccountBinding (keyID, keySecretRef)"
                ),
            );
        }
    }
}

/// The part of a directory URL after the mount's path.
fn suffix(d: &Directory) -> String {
    let mut s = String::new();
    if let Some(i) = &d.issuer {
        s.push_str(&format!("/issuer/{i}"));
    }
    if let Some(r) = &d.role {
        s.push_str(&format!("/roles/{r}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_of_each_shape_name_their_mount_role_and_issuer() {
        let mounts = ["pki", "pki/int"];
        let is = |p: &str| mounts.contains(&p);
        let d = directory("https://v.example:8200/v1/pki/acme/directory", is).unwrap();
        assert_eq!(
            d,
            Directory {
                base: "https://v.example:8200/v1/pki".into(),
                mount: "pki".into(),
                issuer: None,
                role: None
            }
        );
        let d = directory("https://v/v1/pki/int/roles/web/acme/directory", is).unwrap();
        assert_eq!(
            (d.mount.as_str(), d.role.as_deref()),
            ("pki/int", Some("web"))
        );
        assert_eq!(d.base, "https://v/v1/pki/int");
        let d = directory("https://v/v1/pki/issuer/r1/acme/directory", is).unwrap();
        assert_eq!((d.mount.as_str(), d.issuer.as_deref()), ("pki", Some("r1")));
        let d = directory("https://v/v1/pki/issuer/r1/roles/web/acme/directory/", is).unwrap();
        assert_eq!(
            (d.issuer.as_deref(), d.role.as_deref()),
            (Some("r1"), Some("web"))
        );
        assert_eq!(suffix(&d), "/issuer/r1/roles/web");
        // Not a declared mount, or not a Vault directory at all.
        assert!(directory("https://v/v1/other/acme/directory", is).is_none());
        assert!(directory("https://acme-v02.api.letsencrypt.org/directory", is).is_none());
    }

    #[test]
    fn templates_are_urls_only_with_templating() {
        assert!(url_ok(
            "{{cluster_aia_path}}/issuer/{{issuer_id}}/der",
            true
        ));
        assert!(!url_ok(
            "{{cluster_aia_path}}/issuer/{{issuer_id}}/der",
            false
        ));
        assert!(url_ok("http://v/v1/pki/ca", false));
        assert!(!url_ok("v/v1/pki/ca", true));
    }
}
