//! Each Certificate against its issuer: the issuerRef resolves, and for a
//! Vault issuer the names, lifetime and key are ones the PKI role (and its
//! mount and CA) will sign; an ACME issuer with only HTTP-01 solvers cannot
//! issue a wildcard. An annotated Ingress ([`super::ingress`]) is checked
//! with the same [`Request`] steps.

use super::role_allows::{glob, name_allowed, role_hint};
use super::{Checker, IssuerFacts, IssuerIndex};
use crate::diagnostic::suggest;
use crate::model::certmanager::{CERT_MANAGER_GROUP, ClusterObject};
use crate::model::duration::DurationError;
use crate::model::{Duration, Origin, PkiRoleSpec, RoleKeyType};
use crate::validate::ca::CaFacts;

/// The default duration cert-manager asks for (90 days).
const DEFAULT_DURATION: Duration = Duration::from_secs(2160 * 3600);

/// The names and key of a certificate request, from a Certificate or an
/// annotated Ingress, each value with the dotted path it is written at.
pub(super) struct Request<'r> {
    /// `Certificate <ns>/<name>` or `Ingress <ns>/<name>`.
    pub what: String,
    pub origin: &'r Origin,
    pub common_name: Option<(String, String)>,
    pub dns_names: Vec<(String, String)>,
    pub ip_addresses: Vec<(String, String)>,
    pub uris: Vec<(String, String)>,
    pub duration: Option<(String, String)>,
    pub renew_before: Option<(String, String)>,
    pub algorithm: Option<(String, String)>,
    pub size: Option<(i64, String)>,
    /// Where a key problem is reported when no key field is written.
    pub key_at: String,
    /// Where a missing common name is reported.
    pub cn_at: String,
}

/// Each value of a list with its path, `base[i]`.
pub(super) fn items(list: &[String], base: &str) -> Vec<(String, String)> {
    list.iter()
        .enumerate()
        .map(|(i, v)| (v.clone(), format!("{base}[{i}]")))
        .collect()
}

/// Why a cert-manager duration does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum GoDurationError {
    /// A `d` unit: certplane's durations have it, Go's (cert-manager's)
    /// not. With the same length in Go syntax, when it has one.
    #[error(
        "{0:?} is not a Go duration: cert-manager reads Go durations, whose units stop at h (h, m, s; no d)"
    )]
    DayUnit(String, Option<Duration>),
    /// Not a duration at all.
    #[error(transparent)]
    Syntax(#[from] DurationError),
}

/// Parses a cert-manager (Go) duration.
fn go_duration(s: &str) -> Result<Duration, GoDurationError> {
    if s.contains('d') {
        // certplane's own parser reads `d`: the same length in hours.
        return Err(GoDurationError::DayUnit(s.to_string(), s.parse().ok()));
    }
    Ok(s.parse()?)
}

/// The hint for a duration cert-manager cannot read: the equivalent in
/// hours for a `d` duration, else an example.
fn go_hint(e: &GoDurationError, example: &str) -> String {
    match e {
        GoDurationError::DayUnit(written, Some(d)) => {
            format!("write {d}: certplane's own files accept {written}, cert-manager's do not")
        }
        _ => format!("write a Go duration (units h, m, s) such as {example}"),
    }
}

impl<'a> Checker<'a> {
    #[allow(clippy::too_many_arguments)] // Two call sites, each with its own positions.
    pub(super) fn resolve(
        &self,
        issuers: &IssuerIndex,
        origin: &Origin,
        at: &str,
        what: &str,
        ns: &str,
        name: &str,
        cluster: bool,
    ) -> Option<IssuerFacts> {
        let key = ((!cluster).then(|| ns.to_string()), name.to_string());
        if let Some(f) = issuers.get(&key) {
            return Some(f.clone());
        }
        let kind = if cluster { "ClusterIssuer" } else { "Issuer" };
        let candidates: Vec<&str> = issuers
            .keys()
            .filter(|(n, _)| {
                if cluster {
                    n.is_none()
                } else {
                    n.as_deref() == Some(ns)
                }
            })
            .map(|(_, n)| n.as_str())
            .collect();
        let place = if cluster {
            String::new()
        } else {
            format!(" in namespace {ns}")
        };
        let hint = match suggest::closest(name, candidates.iter().copied()) {
            Some(c) => format!("did you mean {c}?"),
            None => {
                let other =
                    issuers.contains_key(&((cluster).then(|| ns.to_string()), name.to_string()));
                if other {
                    format!(
                        "{name} is a{} — set the kind accordingly",
                        if cluster {
                            "n Issuer in this namespace"
                        } else {
                            " ClusterIssuer"
                        }
                    )
                } else {
                    format!("declare the {kind} in the repository, or fix the name")
                }
            }
        };
        self.push(
            origin,
            at,
            format!("{what}: {kind} {name}{place} is not declared"),
            hint,
        );
        None
    }

    pub(super) fn certificates(&self, issuers: &IssuerIndex) {
        let certs = self.objs.iter().filter_map(|o| match &o.obj {
            ClusterObject::Certificate(c) => Some((o.origin(), o.ns(), o.name(), c)),
            _ => None,
        });
        for (origin, ns, name, c) in certs {
            let what = format!("Certificate {ns}/{name}");
            let group = c.issuer_ref.group.as_deref().unwrap_or(CERT_MANAGER_GROUP);
            if group != CERT_MANAGER_GROUP {
                continue; // An external issuer: not certplane's to judge.
            }
            let kind = c.issuer_ref.kind.as_deref().unwrap_or("Issuer");
            let cluster = match kind {
                "Issuer" => false,
                "ClusterIssuer" => true,
                other => {
                    self.push(
                        origin,
                        "spec.issuerRef.kind",
                        format!("{what}: issuerRef kind {other} is not a cert-manager.io kind"),
                        "use Issuer or ClusterIssuer (or set issuerRef.group for an external issuer)",
                    );
                    continue;
                }
            };
            let Some(facts) = self.resolve(
                issuers,
                origin,
                "spec.issuerRef.name",
                &what,
                ns,
                &c.issuer_ref.name,
                cluster,
            ) else {
                continue;
            };
            if c.is_ca == Some(true)
                && let IssuerFacts::Vault { mount, .. } = &facts
            {
                self.push(
                    origin,
                    "spec.isCA",
                    format!(
                        "{what}: isCA is set, but its issuer signs with Vault mount {mount}, whose \
                         sign endpoint does not issue CA certificates"
                    ),
                    "declare the CA as a PkiMount (ca.intermediate signed by this mount), or \
                     issue it with a cert-manager CA or selfSigned issuer",
                );
                continue;
            }
            let pk = c.private_key.clone().unwrap_or_default();
            let req = Request {
                what,
                origin,
                common_name: c.common_name.clone().map(|v| (v, "spec.commonName".into())),
                dns_names: items(&c.dns_names, "spec.dnsNames"),
                ip_addresses: items(&c.ip_addresses, "spec.ipAddresses"),
                uris: items(&c.uris, "spec.uris"),
                duration: c.duration.clone().map(|v| (v, "spec.duration".into())),
                renew_before: c
                    .renew_before
                    .clone()
                    .map(|v| (v, "spec.renewBefore".into())),
                algorithm: pk
                    .algorithm
                    .clone()
                    .map(|a| (a, "spec.privateKey.algorithm".into())),
                size: pk.size.map(|s| (s, "spec.privateKey.size".into())),
                key_at: if c.private_key.is_some() {
                    "spec.privateKey".into()
                } else {
                    "spec".into()
                },
                cn_at: "spec.commonName".into(),
            };
            self.request(&req, &facts);
        }
    }

    /// Checks one certificate request against its issuer.
    pub(super) fn request(&self, r: &Request<'_>, facts: &IssuerFacts) {
        let what = &r.what;
        // Lifetimes.
        let mut duration = DEFAULT_DURATION;
        let mut duration_at = None;
        if let Some((d, at)) = &r.duration {
            match go_duration(d) {
                Ok(v) => {
                    duration = v;
                    duration_at = Some(at.clone());
                }
                Err(e) => {
                    let hint = go_hint(&e, "2160h or 720h30m");
                    self.push(r.origin, at, format!("{what}: duration {e}"), hint);
                    return;
                }
            }
        }
        if let Some((rb, at)) = &r.renew_before {
            match go_duration(rb) {
                Ok(v) if v >= duration => self.push(
                    r.origin,
                    at,
                    format!("{what}: renewBefore {v} is not shorter than the duration {duration}"),
                    "renewBefore must be shorter than duration: lower it (e.g. a third of the duration)",
                ),
                Ok(_) => {}
                Err(e) => {
                    let hint = go_hint(&e, "720h");
                    self.push(r.origin, at, format!("{what}: renewBefore {e}"), hint);
                }
            }
        }
        match facts {
            IssuerFacts::Acme { dns01 } => {
                if !dns01 {
                    for (n, at) in r.dns_names.iter().chain(r.common_name.iter()) {
                        if n.starts_with("*.") {
                            self.push(
                                r.origin,
                                at,
                                format!("{what}: wildcard name {n} cannot be issued by an ACME issuer with only HTTP-01 solvers"),
                                "add a DNS-01 solver to the issuer, or list the names without a wildcard",
                            );
                        }
                    }
                }
            }
            IssuerFacts::Vault {
                mount,
                role: Some(role),
            } => {
                let found = self
                    .repo
                    .pki_roles()
                    .find(|(m, _, s)| m.name == *role && s.mount == *mount)
                    .map(|(_, _, s)| s.clone());
                if let Some(spec) = found {
                    self.names(r, role, &spec);
                    self.lifetime(r, duration, duration_at.as_deref(), mount, role, &spec);
                    self.key(r, role, &spec);
                }
            }
            IssuerFacts::Vault { role: None, .. } | IssuerFacts::Other => {}
        }
    }

    fn names(&self, r: &Request<'_>, role_name: &str, role: &PkiRoleSpec) {
        let what = &r.what;
        if role.require_cn.unwrap_or(true) && r.common_name.is_none() {
            self.push(
                r.origin,
                &r.cn_at,
                format!("{what}: role {role_name} requires a common name and none is set"),
                format!("set commonName, or requireCN: false in PkiRole {role_name}"),
            );
        }
        for (n, at) in r.common_name.iter().chain(r.dns_names.iter()) {
            if n.contains('@') {
                continue; // An email CN: not checked.
            }
            if let Err(why) = name_allowed(role, n) {
                self.push(
                    r.origin,
                    at,
                    format!("{what}: role {role_name} does not allow {n}: {why}"),
                    role_hint(role_name, n),
                );
            }
        }
        if role.allow_ip_sans == Some(false) {
            for (ip, at) in &r.ip_addresses {
                self.push(
                    r.origin,
                    at,
                    format!("{what}: role {role_name} does not allow IP SANs ({ip})"),
                    format!(
                        "set allowIPSans: true in PkiRole {role_name}, or remove the IP address"
                    ),
                );
            }
        }
        let allowed_uris = role.allowed_uri_sans.clone().unwrap_or_default();
        for (u, at) in &r.uris {
            if !allowed_uris.iter().any(|g| glob(g, u)) {
                self.push(
                    r.origin,
                    at,
                    format!(
                        "{what}: role {role_name} does not allow URI SAN {u} (allowedURISans: {})",
                        if allowed_uris.is_empty() {
                            "none".to_string()
                        } else {
                            allowed_uris.join(", ")
                        }
                    ),
                    format!("add a matching glob to allowedURISans of PkiRole {role_name}"),
                );
            }
        }
    }

    fn lifetime(
        &self,
        r: &Request<'_>,
        duration: Duration,
        duration_at: Option<&str>,
        mount: &str,
        role_name: &str,
        role: &PkiRoleSpec,
    ) {
        let at = duration_at.unwrap_or("spec");
        let written = if duration_at.is_some() {
            format!("duration {duration}")
        } else {
            format!("default duration {duration} (cert-manager's 90 days)")
        };
        let mut bounds: Vec<(u64, String, String)> = Vec::new();
        if let Some(m) = role.max_ttl {
            bounds.push((
                m.as_secs(),
                format!("role {role_name} maxTTL {m}"),
                format!("lower duration, or raise maxTTL of PkiRole {role_name}"),
            ));
        }
        if let Some((_, _, ms)) = self.repo.pki_mount(mount)
            && let Some(m) = ms.max_lease_ttl
        {
            bounds.push((
                m.as_secs(),
                format!("mount {mount} maxLeaseTTL {m}"),
                format!("lower duration, or raise maxLeaseTTL of PkiMount {mount}"),
            ));
        }
        if let Some((life, desc)) = self.facts.get(mount).and_then(CaFacts::lifetime_desc) {
            bounds.push((
                life,
                format!("mount {mount} {desc} {}", Duration::from_secs(life)),
                "a certificate cannot outlive its CA: lower duration".into(),
            ));
        }
        if let Some((_, bound, hint)) = bounds.into_iter().find(|(b, _, _)| duration.as_secs() > *b)
        {
            self.push(
                r.origin,
                at,
                format!("{}: {written} exceeds {bound}", r.what),
                hint,
            );
        }
    }

    fn key(&self, r: &Request<'_>, role_name: &str, role: &PkiRoleSpec) {
        let what = &r.what;
        let (algo, algo_at) = match &r.algorithm {
            Some((a, at)) => (a.as_str(), at.as_str()),
            None => ("RSA", r.key_at.as_str()),
        };
        let role_type = role.key_type.unwrap_or(RoleKeyType::Rsa);
        if role_type == RoleKeyType::Any {
            return;
        }
        let (want, default_bits) = match algo {
            "RSA" => (RoleKeyType::Rsa, 2048),
            "ECDSA" => (RoleKeyType::Ec, 256),
            "Ed25519" => (RoleKeyType::Ed25519, 0),
            _ => return, // Reported by the structural check.
        };
        if want != role_type {
            self.push(
                r.origin,
                algo_at,
                format!(
                    "{what}: role {role_name} accepts only {} keys, and the key is {algo}{}",
                    role_type.as_str(),
                    if r.algorithm.is_none() {
                        " (cert-manager's default)"
                    } else {
                        ""
                    }
                ),
                format!(
                    "set privateKey.algorithm: {}, or keyType: any in PkiRole {role_name}",
                    match role_type {
                        RoleKeyType::Rsa => "RSA",
                        RoleKeyType::Ec => "ECDSA",
                        _ => "Ed25519",
                    }
                ),
            );
            return;
        }
        let min = match role.key_bits {
            Some(b) if b != 0 => i64::from(b),
            _ => match role_type {
                RoleKeyType::Rsa => 2048,
                RoleKeyType::Ec => 256,
                _ => 0,
            },
        };
        let (size, size_at) = match &r.size {
            Some((s, at)) => (*s, at.as_str()),
            None => (default_bits, algo_at),
        };
        if want != RoleKeyType::Ed25519 && size < min {
            self.push(
                r.origin,
                size_at,
                format!(
                    "{what}: key size {size} is below the {min} bits role {role_name} requires"
                ),
                format!(
                    "set privateKey.size: {min} or more, or lower keyBits of PkiRole {role_name}"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_have_no_days() {
        assert_eq!(go_duration("2160h").unwrap().as_secs(), 2160 * 3600);
        let e = go_duration("3d").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#""3d" is not a Go duration: cert-manager reads Go durations, whose units stop at h (h, m, s; no d)"#
        );
        assert_eq!(
            go_hint(&e, "720h"),
            "write 72h: certplane's own files accept 3d, cert-manager's do not"
        );
        let e = go_duration("1d12h").unwrap_err();
        assert!(go_hint(&e, "720h").starts_with("write 36h:"), "{e}");
        // No equivalent for what is not a duration at all.
        let e = go_duration("dd").unwrap_err();
        assert_eq!(
            go_hint(&e, "720h"),
            "write a Go duration (units h, m, s) such as 720h"
        );
        assert!(matches!(
            go_duration("2160"),
            Err(GoDurationError::Syntax(_))
        ));
    }
}
