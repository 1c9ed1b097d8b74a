//! Offline cross-checks of a loaded repository (FORMAT.md section 3): no
//! network; the only files read are the certificates and bundles the
//! repository names (never printed). Every finding is a [`Diagnostic`]
//! pointing at the offending field.
//!
//! The Vault side, one file per kind of object: `mounts` (PkiMounts, their
//! CAs and who signs each intermediate), `roles` (PkiRoles), `auth`
//! (AuthMounts, KubernetesAuthRoles, AppRoles); this file holds the entry
//! point, the Config and name checks, and Policy objects' shape (their text:
//! [`acl`]; privileged rules: [`privilege`]). What Vault itself would refuse
//! only half-way through an apply is checked too, each rule pinned against
//! a real OpenBao: names ([`names`]), policy text ([`acl`]), `extra`
//! parameters ([`extra`]), file sources read only when sent (`sources`),
//! Kubernetes auth CAs (`kube_auth`) and CA lifetimes Vault would cap
//! (`lifetimes`); `ca` reads what is known of a CA.
//!
//! The cluster side, cert-manager objects against the Vault declarations,
//! is [`cluster`]; their structure is checked against CRD schemas by
//! [`crd`] (with [`pattern`] for Go regular expressions).

pub mod acl;
mod auth;
mod ca;
pub mod cluster;
pub mod crd;
pub mod extra;
mod kube_auth;
mod lifetimes;
mod mounts;
pub mod names;
pub mod pattern;
pub mod privilege;
mod roles;
mod settings;
mod sources;
mod trust;

use std::collections::BTreeSet;

use crate::diagnostic::Diagnostic;
use crate::model::{KeyType, Origin, Repository};

pub use cluster::Live;

/// Every problem of `repo`; empty when it is valid. Run it after
/// [`crate::expand::expand`], so that objects generated from `VaultIssuer`s
/// are checked too.
pub fn validate(repo: &Repository) -> Vec<Diagnostic> {
    validate_with_live(repo, None)
}

/// [`validate`], with what the live Vault has (when observed): a sign path
/// or auth role that only the live Vault has is then accepted.
pub fn validate_with_live(repo: &Repository, live: Option<&Live>) -> Vec<Diagnostic> {
    let mut v = Validator {
        repo,
        out: Vec::new(),
    };
    v.names();
    v.config();
    let facts = v.mounts();
    v.roles(&facts);
    v.policies();
    v.auth();
    v.exported_keys();
    let mut out = v.out;
    // Checks that catch what Vault would refuse only after earlier writes.
    names::check(repo, &mut out);
    acl::check(repo, &mut out);
    extra::check(repo, &mut out);
    sources::check(repo, &mut out);
    kube_auth::check(repo, &mut out);
    lifetimes::check(repo, &mut out);
    settings::check(repo, &mut out);
    trust::check(repo, &mut out);
    cluster::Checker::new(repo, &facts, live, &mut out).run();
    out
}

struct Validator<'a> {
    repo: &'a Repository,
    out: Vec<Diagnostic>,
}

/// Why a Kubernetes namespace or ServiceAccount name is not a DNS label,
/// if it is not.
fn dns_label_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 63 {
        Some("is longer than 63 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.starts_with('-')
        || name.ends_with('-')
    {
        Some("is not a DNS label")
    } else {
        None
    }
}

/// Why a Kubernetes object name is not a DNS subdomain, if it is not.
fn dns_subdomain_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 253 {
        Some("is longer than 253 characters")
    } else if name
        .split('.')
        .any(|label| dns_label_problem(label).is_some())
    {
        Some("is not a DNS subdomain")
    } else {
        None
    }
}

/// Why a name cannot be a Vault path segment, if it cannot.
fn path_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.chars().any(char::is_whitespace) {
        Some("it contains whitespace")
    } else if name.starts_with('/') || name.ends_with('/') {
        Some("it starts or ends with /")
    } else if name
        .split('/')
        .any(|s| s == ".." || s == "." || s.is_empty())
    {
        Some("it contains an empty, . or .. segment")
    } else if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '?' | '#' | '%' | '*' | '+'))
    {
        Some(
            "it contains a character that is not allowed in a Vault path (?, #, %, *, + or a control character)",
        )
    } else {
        None
    }
}

fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !r.chars().any(char::is_whitespace)
    })
}

/// Allowed key sizes by type (`None`: keyBits must be absent or 0).
fn allowed_bits(t: KeyType) -> Option<&'static [u32]> {
    match t {
        KeyType::Rsa => Some(&[2048, 3072, 4096, 8192]),
        KeyType::Ec => Some(&[224, 256, 384, 521]),
        KeyType::Ed25519 => None,
    }
}

fn list(bits: &[u32]) -> String {
    bits.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Validator<'_> {
    fn push(&mut self, origin: &Origin, path: &str, message: String, hint: impl Into<String>) {
        self.out
            .push(Diagnostic::new(origin.at(path), message).hint(hint));
    }

    fn key_size(&mut self, origin: &Origin, base: &str, t: KeyType, bits: Option<u32>) {
        let Some(bits) = bits else {
            return;
        };
        let path = format!("{base}.keyBits");
        match allowed_bits(t) {
            Some(ok) if bits != 0 && !ok.contains(&bits) => self.push(
                origin,
                &path,
                format!(
                    "keyBits {bits} is not a valid size for keyType {}",
                    t.as_str()
                ),
                format!(
                    "use one of {} (or leave keyBits out for {})",
                    list(ok),
                    t.default_bits()
                ),
            ),
            None if bits != 0 => self.push(
                origin,
                &path,
                format!("keyBits {bits} given for keyType {}", t.as_str()),
                "ed25519 keys have a fixed size: remove keyBits",
            ),
            _ => {}
        }
    }

    fn names(&mut self) {
        for o in &self.repo.vault {
            if let Some(why) = path_name_problem(&o.meta.name) {
                self.push(
                    &o.origin,
                    "metadata.name",
                    format!(
                        "{} name {:?} cannot be used as a Vault path: {why}",
                        o.spec.kind(),
                        o.meta.name
                    ),
                    "use letters, digits, -, _ and . (and / only between segments)",
                );
            }
        }
        for (meta, origin, _) in self.repo.policies() {
            if meta.name == "root" {
                self.push(
                    origin,
                    "metadata.name",
                    "the root policy cannot be written".into(),
                    "choose another name; root is built into Vault",
                );
            }
        }
    }

    fn config(&mut self) {
        let Some(cfg) = &self.repo.config else {
            return;
        };
        let Some(vault) = &cfg.spec.vault else {
            return;
        };
        let o = &cfg.origin;
        if let Some(addr) = &vault.address
            && !is_http_url(addr)
        {
            self.push(
                o,
                "spec.vault.address",
                format!("vault address {addr:?} is not an http(s) URL"),
                "write it as https://vault.example.com:8200",
            );
        }
        for (path, file) in [
            ("spec.vault.caBundleFile", &vault.ca_bundle_file),
            ("spec.vault.clientCertFile", &vault.client_cert_file),
            ("spec.vault.clientKeyFile", &vault.client_key_file),
        ] {
            if let Some(f) = file
                && !f.is_file()
            {
                self.push(
                    o,
                    path,
                    format!("file {} does not exist", f.display()),
                    "paths are relative to the YAML file that names them",
                );
            }
        }
        if vault.client_cert_file.is_some() != vault.client_key_file.is_some() {
            self.push(
                o,
                "spec.vault",
                "mTLS needs both clientCertFile and clientKeyFile".into(),
                "give both, or neither",
            );
        }
    }

    fn policies(&mut self) {
        for (meta, origin, p) in self.repo.policies() {
            let name = &meta.name;
            if !privilege::opted_in(meta) {
                for f in privilege::findings(name, p) {
                    self.push(
                        origin,
                        &f.at,
                        format!("policy {name} is privileged: {}", f.why),
                        format!(
                            "if this is intended, opt in on this Policy with `metadata: {{annotations: {{{}: \"true\"}}}}` (the plan then marks its changes); otherwise narrow the rule",
                            privilege::ANNOTATION
                        ),
                    );
                }
            }
            match (&p.rules, &p.hcl) {
                (Some(_), Some(_)) => self.push(
                    origin,
                    "spec.hcl",
                    format!("policy {name} has both rules and hcl"),
                    "keep one: rules (rendered to HCL by certplane) or hcl (the text itself)",
                ),
                (None, None) => self.push(
                    origin,
                    "spec",
                    format!("policy {name} has neither rules nor hcl"),
                    "add rules: [{path: ..., capabilities: [...]}] or hcl: |",
                ),
                (None, Some(h)) if h.trim().is_empty() => self.push(
                    origin,
                    "spec.hcl",
                    format!("policy {name} has an empty hcl"),
                    "write the policy text, or use rules",
                ),
                (Some(rules), None) if rules.is_empty() => self.push(
                    origin,
                    "spec.rules",
                    format!("policy {name} has no rules"),
                    "add at least one {path: ..., capabilities: [...]}",
                ),
                _ => {}
            }
            let mut paths = BTreeSet::new();
            for (i, rule) in p.rules.iter().flatten().enumerate() {
                let base = format!("spec.rules[{i}]");
                if rule.path.trim().is_empty() {
                    self.push(
                        origin,
                        &format!("{base}.path"),
                        format!("policy {name}: rule {i} has an empty path"),
                        "write the API path, e.g. pki_int/sign/example-dot-com",
                    );
                } else if !paths.insert(rule.path.as_str()) {
                    self.push(
                        origin,
                        &format!("{base}.path"),
                        format!("policy {name}: path {} appears in two rules", rule.path),
                        "merge the capabilities into one rule",
                    );
                }
                if rule.capabilities.is_empty() {
                    self.push(
                        origin,
                        &format!("{base}.capabilities"),
                        format!("policy {name}: rule for {} has no capabilities", rule.path),
                        "list what the holder may do, e.g. [update] to sign",
                    );
                } else if rule.capabilities.contains(&crate::model::Capability::Deny)
                    && rule.capabilities.len() > 1
                {
                    self.push(
                        origin,
                        &format!("{base}.capabilities"),
                        format!(
                            "policy {name}: deny is mixed with other capabilities on {}",
                            rule.path
                        ),
                        "deny overrides everything: use [deny] alone, or remove it",
                    );
                }
            }
        }
    }
}
