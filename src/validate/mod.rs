//! Offline cross-checks of a loaded repository (FORMAT.md section 3, Vault
//! side): references between objects, TTL ordering, CA path lengths, key
//! types and sizes, policy shape and names. No network; the only files read
//! are the certificates and bundles the repository names (never printed).
//!
//! What Vault itself would refuse only half-way through an apply is checked
//! here too, each rule pinned against a real OpenBao: names ([`names`]),
//! policy text ([`acl`]), `extra` parameters ([`extra`]), file sources
//! read only when sent (`sources`), Kubernetes auth CAs (`kube_auth`) and
//! CA lifetimes Vault would cap (`lifetimes`).
//!
//! Every finding is a [`Diagnostic`] pointing at the offending field.

pub mod acl;
mod ca;
pub mod cluster;
pub mod crd;
pub mod extra;
mod kube_auth;
mod lifetimes;
pub mod names;
pub mod pattern;
pub mod privilege;
mod sources;

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::{Diagnostic, suggest};
use crate::model::{
    AuthType, CaSpec, Duration, KeyType, KubernetesAuthConfig, Origin, PkiRoleSpec, Repository,
    RoleKeyType, SignedBy, TokenReviewer,
};

use ca::CaFacts;

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
    cluster::Checker::new(repo, &facts, live, &mut out).run();
    out
}

/// What the checks of KubernetesAuthRole and AppRole share.
struct AuthRole<'a> {
    meta: &'a crate::model::Meta,
    origin: &'a Origin,
    mount: &'a str,
    token_policies: &'a [String],
    ttl: Option<Duration>,
    max: Option<Duration>,
    want: AuthType,
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

impl<'a> Validator<'a> {
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

    /// Checks every PkiMount and returns what is known of each mount's CA.
    fn mounts(&mut self) -> BTreeMap<String, CaFacts> {
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
                    for (i, u) in list.iter().enumerate() {
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
                    Err((message, hint)) => {
                        let at = match &imp.pem_bundle_from {
                            crate::model::Source::Env(_) => "spec.ca.import.pemBundleFrom.env",
                            crate::model::Source::File(_) => "spec.ca.import.pemBundleFrom.file",
                            crate::model::Source::Value(_) => "spec.ca.import.pemBundleFrom",
                        };
                        self.push(origin, at, format!("mount {}: {message}", meta.name), hint);
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
                        Err((message, hint)) => {
                            self.push(origin, at, message, hint);
                            continue;
                        }
                    }
                }
                SignedBy::Manual(m) => {
                    let at = "spec.ca.intermediate.signedBy.manual.certificateFile";
                    if m.certificate_file.exists()
                        && let Err((message, hint)) = ca::read_cert_file(&m.certificate_file)
                    {
                        self.push(origin, at, message, hint);
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

    fn roles(&mut self, facts: &BTreeMap<String, CaFacts>) {
        let mounts: Vec<&str> = self
            .repo
            .pki_mounts()
            .map(|(m, _, _)| m.name.as_str())
            .collect();
        for (meta, origin, role) in self.repo.pki_roles() {
            let name = &meta.name;
            self.role_keys(origin, role);
            if let (Some(ttl), Some(max)) = (role.ttl, role.max_ttl)
                && ttl > max
            {
                self.push(
                    origin,
                    "spec.ttl",
                    format!("role {name} ttl {ttl} exceeds its maxTTL {max}"),
                    "lower ttl or raise maxTTL",
                );
            }
            let Some((_, _, mount)) = self.repo.pki_mount(&role.mount) else {
                self.push(
                    origin,
                    "spec.mount",
                    format!(
                        "role {name}: mount {} is not a declared PkiMount",
                        role.mount
                    ),
                    suggest::did_you_mean(&role.mount, mounts.iter().copied()),
                );
                continue;
            };
            if let Some(r) = &role.issuer_ref {
                let declared: Vec<&str> = match &mount.ca {
                    Some(CaSpec::Root(c)) => c.issuer_name.as_deref().into_iter().collect(),
                    Some(CaSpec::Intermediate(c)) => c.issuer_name.as_deref().into_iter().collect(),
                    Some(CaSpec::Import(c)) => c.issuer_name.as_deref().into_iter().collect(),
                    None => Vec::new(),
                };
                let is_id = r.len() == 36 && r.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
                if r != "default" && !is_id && !declared.contains(&r.as_str()) {
                    let hint = match suggest::closest(r, declared.iter().copied()) {
                        Some(c) => format!("did you mean {c}? or use default"),
                        None => format!(
                            "use default, or an issuerName declared in PkiMount {} ({})",
                            role.mount,
                            if declared.is_empty() {
                                "none is".to_string()
                            } else {
                                declared.join(", ")
                            }
                        ),
                    };
                    self.push(
                        origin,
                        "spec.issuerRef",
                        format!(
                            "role {name}: issuerRef {r} is not an issuer of mount {}",
                            role.mount
                        ),
                        hint,
                    );
                }
            }
            // role maxTTL (or ttl) <= mount maxLeaseTTL <= CA lifetime.
            let (field, longest) = match (role.max_ttl, role.ttl) {
                (Some(m), _) => ("maxTTL", m),
                (None, Some(t)) => ("ttl", t),
                (None, None) => continue,
            };
            let path = if field == "maxTTL" {
                "spec.maxTTL"
            } else {
                "spec.ttl"
            };
            if let Some(mlt) = mount.max_lease_ttl
                && longest > mlt
            {
                self.push(
                    origin,
                    path,
                    format!(
                        "role {field} {longest} exceeds mount {} maxLeaseTTL {mlt}",
                        role.mount
                    ),
                    format!(
                        "lower the role's {field}, or raise maxLeaseTTL of PkiMount {}",
                        role.mount
                    ),
                );
                continue;
            }
            if let Some((life, what)) = facts.get(&role.mount).and_then(CaFacts::lifetime_desc)
                && longest.as_secs() > life
            {
                self.push(
                    origin,
                    path,
                    format!(
                        "role {field} {longest} exceeds mount {} {what} {}",
                        role.mount,
                        Duration::from_secs(life)
                    ),
                    "a certificate cannot outlive its CA: lower the role's TTL",
                );
            }
        }
    }

    fn role_keys(&mut self, origin: &Origin, role: &PkiRoleSpec) {
        let t = match role.key_type {
            Some(RoleKeyType::Rsa) | None => KeyType::Rsa,
            Some(RoleKeyType::Ec) => KeyType::Ec,
            Some(RoleKeyType::Ed25519) => KeyType::Ed25519,
            Some(RoleKeyType::Any) => return,
        };
        self.key_size(origin, "spec", t, role.key_bits);
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

    /// A kubernetes auth config names exactly one token reviewer, and a
    /// usable one.
    fn token_reviewer(&mut self, mount: &str, origin: &Origin, k: &KubernetesAuthConfig) {
        match (&k.token_reviewer, &k.token_reviewer_jwt_from) {
            (None, None) => self.push(
                origin,
                "spec.kubernetes",
                format!(
                    "auth mount {mount} has no token reviewer: Vault would review each login's \
                     token with that same token, and the API server refuses the audience-bound \
                     tokens cert-manager requests (401), so every login fails"
                ),
                "add to spec.kubernetes `tokenReviewer: {serviceAccount: {namespace: vault-auth, \
                 name: vault-token-reviewer}}` (certplane creates the ServiceAccount, its token \
                 Secret and a ClusterRoleBinding to system:auth-delegator, and writes the token to \
                 Vault); or `tokenReviewer: {vaultPodIdentity: true}` when Vault runs in the \
                 cluster with an account bound to system:auth-delegator; or \
                 `tokenReviewerJwtFrom: {env: K8S_TOKEN_REVIEWER_JWT}`",
            ),
            (Some(_), Some(_)) => self.push(
                origin,
                "spec.kubernetes.tokenReviewerJwtFrom",
                format!("auth mount {mount} names two token reviewers"),
                "keep either tokenReviewer or tokenReviewerJwtFrom",
            ),
            (Some(TokenReviewer::VaultPodIdentity(false)), None) => self.push(
                origin,
                "spec.kubernetes.tokenReviewer.vaultPodIdentity",
                format!("auth mount {mount}: vaultPodIdentity: false names no token reviewer"),
                "set vaultPodIdentity: true (Vault runs in the cluster), or declare \
                 tokenReviewer: {serviceAccount: {namespace: ..., name: ...}}",
            ),
            (Some(TokenReviewer::VaultPodIdentity(true)), None)
                if k.disable_local_ca_jwt == Some(true) =>
            {
                self.push(
                    origin,
                    "spec.kubernetes.disableLocalCaJwt",
                    format!(
                        "auth mount {mount}: vaultPodIdentity reviews with Vault's own pod \
                         token, which disableLocalCaJwt: true turns off"
                    ),
                    "remove disableLocalCaJwt (Vault in the cluster), or use tokenReviewer: \
                     {serviceAccount: ...} when Vault runs outside the cluster",
                )
            }
            (Some(TokenReviewer::ServiceAccount(sa)), None) => {
                for (field, value) in [("namespace", &sa.namespace), ("name", &sa.name)] {
                    if let Some(why) = dns_label_problem(value) {
                        self.push(
                            origin,
                            &format!("spec.kubernetes.tokenReviewer.serviceAccount.{field}"),
                            format!("auth mount {mount}: token reviewer {field} {value:?} {why}"),
                            "use lowercase letters, digits and '-' (a DNS label)",
                        );
                    }
                }
            }
            (Some(TokenReviewer::VaultPodIdentity(true)), None) | (None, Some(_)) => {}
        }
    }

    /// An exported intermediate key goes somewhere: `exportKey: true` and
    /// `deliverKeyTo` come together, and the key is made when the
    /// certificate is (not with a manual signature, which comes later).
    fn exported_keys(&mut self) {
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

    fn auth(&mut self) {
        for (meta, origin, m) in self.repo.auth_mounts() {
            if m.kubernetes.is_some() && m.auth_type != AuthType::Kubernetes {
                self.push(
                    origin,
                    "spec.kubernetes",
                    format!(
                        "auth mount {} of type {} has a kubernetes config",
                        meta.name,
                        m.auth_type.as_str()
                    ),
                    "remove spec.kubernetes, or set type: kubernetes",
                );
            }
            if m.jwt.is_some() && m.auth_type != AuthType::Jwt {
                self.push(
                    origin,
                    "spec.jwt",
                    format!(
                        "auth mount {} of type {} has a jwt config",
                        meta.name,
                        m.auth_type.as_str()
                    ),
                    "remove spec.jwt, or set type: jwt",
                );
            }
            if let Some(k) = &m.kubernetes {
                if !is_http_url(&k.host) {
                    self.push(
                        origin,
                        "spec.kubernetes.host",
                        format!("kubernetes host {:?} is not an http(s) URL", k.host),
                        "write the API server URL, e.g. https://kubernetes.default.svc",
                    );
                }
                if let Some(f) = &k.ca_cert_file
                    && let Err((message, hint)) = ca::read_any_cert(f)
                {
                    self.push(origin, "spec.kubernetes.caCertFile", message, hint);
                }
                self.token_reviewer(&meta.name, origin, k);
            }
        }
        for (meta, origin, r) in self.repo.kubernetes_auth_roles() {
            for (field, list) in [
                ("boundServiceAccountNames", &r.bound_service_account_names),
                (
                    "boundServiceAccountNamespaces",
                    &r.bound_service_account_namespaces,
                ),
            ] {
                if list.is_empty() {
                    self.push(
                        origin,
                        &format!("spec.{field}"),
                        format!("KubernetesAuthRole {}: {field} is empty", meta.name),
                        "list the service accounts (or namespaces) that may log in; * admits any",
                    );
                }
            }
        }
        let policies: Vec<&str> = self
            .repo
            .policies()
            .map(|(m, _, _)| m.name.as_str())
            .collect();
        let roles: Vec<AuthRole<'_>> = self
            .repo
            .kubernetes_auth_roles()
            .map(|(meta, origin, s)| AuthRole {
                meta,
                origin,
                mount: &s.mount,
                token_policies: &s.token_policies,
                ttl: s.token_ttl,
                max: s.token_max_ttl,
                want: AuthType::Kubernetes,
            })
            .chain(self.repo.app_roles().map(|(meta, origin, s)| AuthRole {
                meta,
                origin,
                mount: &s.mount,
                token_policies: &s.token_policies,
                ttl: s.token_ttl,
                max: s.token_max_ttl,
                want: AuthType::Approle,
            }))
            .collect();
        for AuthRole {
            meta,
            origin,
            mount,
            token_policies,
            ttl,
            max,
            want,
        } in roles
        {
            let kind = if want == AuthType::Kubernetes {
                "KubernetesAuthRole"
            } else {
                "AppRole"
            };
            let of_type: Vec<&str> = self
                .repo
                .auth_mounts()
                .filter(|(_, _, s)| s.auth_type == want)
                .map(|(m, _, _)| m.name.as_str())
                .collect();
            match self.repo.auth_mount(mount) {
                None => self.push(
                    origin,
                    "spec.mount",
                    format!(
                        "{kind} {}: auth mount {mount} is not a declared AuthMount",
                        meta.name
                    ),
                    suggest::did_you_mean(mount, of_type.iter().copied()),
                ),
                Some((_, _, m)) if m.auth_type != want => self.push(
                    origin,
                    "spec.mount",
                    format!(
                        "{kind} {} needs an auth mount of type {}, but {mount} is of type {}",
                        meta.name,
                        want.as_str(),
                        m.auth_type.as_str()
                    ),
                    if of_type.is_empty() {
                        format!("declare an AuthMount with type: {}", want.as_str())
                    } else {
                        format!(
                            "auth mounts of type {}: {}",
                            want.as_str(),
                            of_type.join(", ")
                        )
                    },
                ),
                Some(_) => {}
            }
            for (i, p) in token_policies.iter().enumerate() {
                if p != "default" && !policies.contains(&p.as_str()) {
                    self.push(
                        origin,
                        &format!("spec.tokenPolicies[{i}]"),
                        format!("{kind} {}: policy {p} is not a declared Policy", meta.name),
                        suggest::did_you_mean(p, policies.iter().copied()),
                    );
                }
            }
            if let (Some(t), Some(m)) = (ttl, max)
                && t > m
            {
                self.push(
                    origin,
                    "spec.tokenTTL",
                    format!(
                        "{kind} {} tokenTTL {t} exceeds its tokenMaxTTL {m}",
                        meta.name
                    ),
                    "lower tokenTTL or raise tokenMaxTTL",
                );
            }
        }
    }
}
