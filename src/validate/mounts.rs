//! PkiMounts: lease TTLs, AIA URLs, the CA's key and path length, what is
//! known of each mount's CA (declared, or read from an imported or external
//! PEM), who signs each intermediate and whether that signer may, and where
//! an exported intermediate key goes.

use std::collections::BTreeMap;

use super::ca::{self, CaFacts};
use super::{Validator, dns_label_problem, dns_subdomain_problem, is_http_url};
use crate::diagnostic::suggest;
use crate::model::{CaSpec, Duration, Origin, SignedBy, Source};

impl Validator<'_> {
    /// Checks every PkiMount and returns what is known of each mount's CA.
    pub(super) fn mounts(&mut self) -> BTreeMap<String, CaFacts> {
        let mut facts = BTreeMap::new();
        for (meta, origin, spec) in self.repo.pki_mounts() {
            if let (Some(d), Some(m)) = (spec.default_lease_ttl, spec.max_lease_ttl)
                && d > m
            {
                self.push(
                    origin,
                    "spec.defaultLeaseTTL",
                    format!(
                        "mount {} defaultLeaseTTL {d} exceeds its maxLeaseTTL {m}",
                        meta.name
                    ),
                    "lower defaultLeaseTTL or raise maxLeaseTTL",
                );
            }
            if let Some(urls) = &spec.urls {
                for (field, list) in [
                    ("issuingCertificates", &urls.issuing_certificates),
                    ("crlDistributionPoints", &urls.crl_distribution_points),
                    ("ocspServers", &urls.ocsp_servers),
                ] {
                    for (i, u) in list.iter().flatten().enumerate() {
                        if !is_http_url(u) {
                            self.push(
                                origin,
                                &format!("spec.urls.{field}[{i}]"),
                                format!("{u:?} is not an http(s) URL"),
                                format!(
                                    "write it as http://vault.example.com:8200/v1/{}/ca",
                                    meta.name
                                ),
                            );
                        }
                    }
                }
            }
            let f = match &spec.ca {
                None => CaFacts::none(),
                Some(CaSpec::Root(r)) => {
                    self.key_size(origin, "spec.ca.root", r.key_type, r.key_bits);
                    self.path_length(origin, "spec.ca.root", r.max_path_length);
                    CaFacts::generated(r.ttl, r.max_path_length)
                }
                Some(CaSpec::Intermediate(i)) => {
                    self.key_size(origin, "spec.ca.intermediate", i.key_type, i.key_bits);
                    self.path_length(origin, "spec.ca.intermediate", i.max_path_length);
                    CaFacts::generated(i.ttl, i.max_path_length)
                }
                Some(CaSpec::Import(imp)) => match ca::read_import(&imp.pem_bundle_from) {
                    Ok(f) => f,
                    Err(e) => {
                        let at = match &imp.pem_bundle_from {
                            Source::Env(_) => "spec.ca.import.pemBundleFrom.env",
                            Source::File(_) => "spec.ca.import.pemBundleFrom.file",
                            Source::Value(_) => "spec.ca.import.pemBundleFrom",
                        };
                        self.push(origin, at, format!("mount {}: {e}", meta.name), e.hint());
                        CaFacts::none()
                    }
                },
            };
            // The mount's ceiling must fit in the CA's lifetime.
            if let (Some(max), Some((life, what))) = (spec.max_lease_ttl, f.lifetime_desc())
                && max.as_secs() > life
            {
                self.push(
                    origin,
                    "spec.maxLeaseTTL",
                    format!(
                        "mount {} maxLeaseTTL {max} exceeds {what} {}",
                        meta.name,
                        Duration::from_secs(life)
                    ),
                    "lower maxLeaseTTL to at most the CA's lifetime, or give the CA a longer ttl",
                );
            }
            facts.insert(meta.name.clone(), f);
        }
        self.chains(&facts);
        facts
    }

    fn path_length(&mut self, origin: &Origin, base: &str, n: Option<i32>) {
        if let Some(n) = n
            && n < -1
        {
            self.push(
                origin,
                &format!("{base}.maxPathLength"),
                format!("maxPathLength {n} is not valid"),
                "use -1 (unlimited), 0 (may sign only leaves) or a positive number",
            );
        }
    }

    /// Intermediates: who signs them, and whether that signer may.
    fn chains(&mut self, facts: &BTreeMap<String, CaFacts>) {
        let mounts: Vec<&str> = self
            .repo
            .pki_mounts()
            .map(|(m, _, _)| m.name.as_str())
            .collect();
        for (meta, origin, spec) in self.repo.pki_mounts() {
            let Some(CaSpec::Intermediate(int)) = &spec.ca else {
                continue;
            };
            let name = meta.name.as_str();
            let (parent, parent_name, at) = match &int.signed_by {
                SignedBy::Mount(p) => {
                    let at = "spec.ca.intermediate.signedBy.mount";
                    if p == name {
                        self.push(
                            origin,
                            at,
                            format!("mount {name} cannot sign its own intermediate"),
                            "sign it with another PkiMount that has a CA (a root), or make this CA a root",
                        );
                        continue;
                    }
                    let Some((_, _, pspec)) = self.repo.pki_mount(p) else {
                        self.push(
                            origin,
                            at,
                            format!("signedBy mount {p} is not a declared PkiMount"),
                            suggest::did_you_mean(p, mounts.iter().copied()),
                        );
                        continue;
                    };
                    if pspec.ca.is_none() {
                        self.push(
                            origin,
                            at,
                            format!("signedBy mount {p} has no CA"),
                            format!("give PkiMount {p} a ca (root, import or intermediate)"),
                        );
                        continue;
                    }
                    if let Some(cycle) = self.cycle_from(name) {
                        self.push(
                            origin,
                            at,
                            format!("intermediates sign each other in a cycle: {cycle}"),
                            "one CA of the chain must be a root or imported",
                        );
                        continue;
                    }
                    let Some(f) = facts.get(p.as_str()) else {
                        continue;
                    };
                    (f.clone(), format!("mount {p}"), at)
                }
                SignedBy::External(e) => {
                    let at = "spec.ca.intermediate.signedBy.external.caCertFile";
                    match ca::read_cert_file(&e.ca_cert_file) {
                        Ok(f) => (f, format!("external CA {}", e.ca_cert_file.display()), at),
                        Err(e) => {
                            self.push(origin, at, e.to_string(), e.hint());
                            continue;
                        }
                    }
                }
                SignedBy::Manual(m) => {
                    let at = "spec.ca.intermediate.signedBy.manual.certificateFile";
                    if m.certificate_file.exists()
                        && let Err(e) = ca::read_cert_file(&m.certificate_file)
                    {
                        self.push(origin, at, e.to_string(), e.hint());
                    }
                    continue;
                }
            };
            if !parent.is_ca {
                self.push(
                    origin,
                    at,
                    format!("{parent_name} is not a CA certificate (basicConstraints CA:FALSE)"),
                    "sign the intermediate with a CA certificate",
                );
                continue;
            }
            if parent.path_len == Some(0) {
                self.push(
                    origin,
                    at,
                    format!("{parent_name} has path length 0 and cannot sign the intermediate {name}"),
                    "raise the parent's maxPathLength (e.g. 1), or sign with a CA that allows sub-CAs",
                );
            }
            if let (Some(ttl), Some((life, what))) = (int.ttl, parent.lifetime_desc())
                && ttl.as_secs() > life
            {
                self.push(
                    origin,
                    "spec.ca.intermediate.ttl",
                    format!(
                        "intermediate {name} ttl {ttl} exceeds {parent_name} {what} {}",
                        Duration::from_secs(life)
                    ),
                    "an intermediate cannot outlive its parent: lower its ttl",
                );
            }
        }
    }

    /// The cycle of `signedBy.mount` links starting at `start`, if any.
    fn cycle_from(&self, start: &str) -> Option<String> {
        let mut seen = vec![start.to_string()];
        let mut cur = start.to_string();
        loop {
            let (_, _, spec) = self.repo.pki_mount(&cur)?;
            let Some(CaSpec::Intermediate(i)) = &spec.ca else {
                return None;
            };
            let SignedBy::Mount(next) = &i.signed_by else {
                return None;
            };
            if next == start {
                seen.push(next.clone());
                return Some(seen.join(" <- "));
            }
            if seen.contains(next) {
                // A cycle further up: reported at its own members.
                return None;
            }
            seen.push(next.clone());
            cur = next.clone();
        }
    }

    /// An exported intermediate key goes somewhere: `exportKey: true` and
    /// `deliverKeyTo` come together, and the key is made when the
    /// certificate is (not with a manual signature, which comes later).
    pub(super) fn exported_keys(&mut self) {
        for (meta, origin, m) in self.repo.pki_mounts() {
            let Some(CaSpec::Intermediate(i)) = &m.ca else {
                continue;
            };
            let base = "spec.ca.intermediate";
            match (i.export_key, &i.deliver_key_to) {
                (true, None) => self.push(
                    origin,
                    &format!("{base}.exportKey"),
                    format!(
                        "intermediate {}: exportKey: true without deliverKeyTo: Vault returns the key \
                         once and it would be discarded",
                        meta.name
                    ),
                    "add `deliverKeyTo: {secret: {namespace: ..., name: ...}, format: tls}` (format \
                     istio for Istio's cacerts), or remove exportKey to keep the key in Vault",
                ),
                (false, Some(_)) => self.push(
                    origin,
                    &format!("{base}.deliverKeyTo"),
                    format!(
                        "intermediate {}: deliverKeyTo without exportKey: true: the key stays in Vault",
                        meta.name
                    ),
                    "set exportKey: true to export and deliver the key, or remove deliverKeyTo",
                ),
                (true, Some(to)) => {
                    if matches!(i.signed_by, SignedBy::Manual(_)) {
                        self.push(
                            origin,
                            &format!("{base}.deliverKeyTo"),
                            format!(
                                "intermediate {}: deliverKeyTo with signedBy.manual: the key is made \
                                 with the CSR, before the signed certificate exists",
                                meta.name
                            ),
                            "sign with signedBy.mount or signedBy.external to deliver the key",
                        );
                    }
                    let names = [
                        (
                            "namespace",
                            &to.secret.namespace,
                            dns_label_problem(&to.secret.namespace),
                        ),
                        ("name", &to.secret.name, dns_subdomain_problem(&to.secret.name)),
                    ];
                    for (field, value, problem) in names {
                        if let Some(why) = problem {
                            self.push(
                                origin,
                                &format!("{base}.deliverKeyTo.secret.{field}"),
                                format!(
                                    "intermediate {}: deliverKeyTo {field} {value:?} {why}",
                                    meta.name
                                ),
                                "use lowercase letters, digits, '-' (and '.' in a name)",
                            );
                        }
                    }
                }
                (false, None) => {}
            }
        }
    }
}
