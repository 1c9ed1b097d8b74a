//! Cross-checks between the cluster objects and the Vault declarations
//! (FORMAT.md section 3): does each cert-manager Issuer point at a sign
//! endpoint the repository (or the live Vault) has, can it log in there,
//! may it sign, and will each Certificate (or annotated Ingress) it serves
//! be accepted by the role behind it.
//!
//! Every cert-manager object is first checked structurally against the
//! built-in schema (`crd.rs`); the typed objects of
//! [`crate::model::certmanager`] are read only from objects that pass. The
//! checks run on the repository after `expand`, so objects generated from a
//! `VaultIssuer` are checked like written ones and point at the VaultIssuer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use serde_json::Value;

use super::ca::CaFacts;
use super::{acl, crd};
use crate::diagnostic::Diagnostic;
use crate::diagnostic::suggest;
use crate::expand::GENERATED_FROM;
use crate::load::{describe_key, manifest_key};
use crate::model::certmanager::{
    CERT_MANAGER_GROUP, CERT_MANAGER_NAMESPACE, CertificateSpec, ClusterObject,
    INGRESS_CLUSTER_ISSUER, INGRESS_ISSUER, IngressSpec, IssuerSpec, Role, RoleBinding, Secret,
    VaultIssuer, group_of,
};
use crate::model::{
    AuthType, CertManagerRef, Duration, Loaded, Origin, PkiRoleSpec, Repository, RoleKeyType,
};

/// What the live Vault has, when the caller observed it: a sign path or an
/// auth role that the repository does not declare but the server has is
/// then not an error (and is not checked further).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Live {
    /// PKI mount paths.
    pub pki_mounts: BTreeSet<String>,
    /// (mount, role) of PKI roles.
    pub pki_roles: BTreeSet<(String, String)>,
    /// Auth mount paths.
    pub auth_mounts: BTreeSet<String>,
    /// (auth mount, role) of Kubernetes and AppRole roles.
    pub auth_roles: BTreeSet<(String, String)>,
}

/// The default duration cert-manager asks for (90 days).
const DEFAULT_DURATION: Duration = Duration::from_secs(2160 * 3600);

/// One typed cluster object with where it came from.
struct Obj<'a> {
    m: &'a Loaded<Value>,
    obj: ClusterObject,
}

impl Obj<'_> {
    fn ns(&self) -> &str {
        self.m.meta.namespace.as_deref().unwrap_or("default")
    }
    fn name(&self) -> &str {
        &self.m.meta.name
    }
    fn origin(&self) -> &Origin {
        &self.m.origin
    }
}

/// Where a Vault issuer signs: the mount and (unless sign-verbatim without
/// a role) the role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignPath {
    /// The PKI mount.
    pub mount: String,
    /// The role, `None` for `<mount>/sign-verbatim`.
    pub role: Option<String>,
}

/// Parses an Issuer's `spec.vault.path`: `Ok(sign path)`, or `Err((message,
/// hint))`.
pub fn parse_sign_path(path: &str) -> Result<SignPath, (String, String)> {
    let p = path.trim_matches('/');
    let p = p.strip_prefix("v1/").unwrap_or(p);
    let segs: Vec<&str> = p.split('/').collect();
    let n = segs.len();
    let bad = || {
        (
            format!("vault path {path:?} is not a sign endpoint"),
            "write <mount>/sign/<role> (or <mount>/issuer/<ref>/sign/<role>, <mount>/sign-verbatim[/<role>])".to_string(),
        )
    };
    let mount_of = |end: usize| -> Option<String> {
        let mut m = &segs[..end];
        if m.len() >= 3 && m[m.len() - 2] == "issuer" {
            m = &m[..m.len() - 2];
        }
        (!m.is_empty() && m.iter().all(|s| !s.is_empty())).then(|| m.join("/"))
    };
    if n >= 3 && (segs[n - 2] == "sign" || segs[n - 2] == "issue") && !segs[n - 1].is_empty() {
        let mount = mount_of(n - 2).ok_or_else(bad)?;
        let role = segs[n - 1].to_string();
        if segs[n - 2] == "issue" {
            return Err((
                format!("vault path {path:?} is an issue endpoint"),
                format!("cert-manager sends a CSR: use {mount}/sign/{role}"),
            ));
        }
        return Ok(SignPath {
            mount,
            role: Some(role),
        });
    }
    if n >= 2 && segs[n - 1] == "sign-verbatim" {
        let mount = mount_of(n - 1).ok_or_else(bad)?;
        return Ok(SignPath { mount, role: None });
    }
    if n >= 3 && segs[n - 2] == "sign-verbatim" && !segs[n - 1].is_empty() {
        let mount = mount_of(n - 2).ok_or_else(bad)?;
        return Ok(SignPath {
            mount,
            role: Some(segs[n - 1].to_string()),
        });
    }
    Err(bad())
}

/// What a Certificate needs to know of its issuer.
#[derive(Clone, Debug)]
enum IssuerFacts {
    /// A Vault issuer whose role is declared in the repository.
    Vault { mount: String, role: Option<String> },
    /// An ACME issuer; `dns01` is whether any solver can prove a wildcard.
    Acme { dns01: bool },
    /// Anything else, or a Vault issuer whose role is unknown.
    Other,
}

/// Issuers by (namespace, `None` for a ClusterIssuer; name).
type IssuerIndex = HashMap<(Option<String>, String), IssuerFacts>;

/// An Ingress with what its checks need.
type IngressRow = (
    Origin,
    String,
    String,
    BTreeMap<String, String>,
    IngressSpec,
);

/// The names and key of a certificate request, from a Certificate or an
/// annotated Ingress, with the dotted path of each value.
struct Request<'a> {
    what: String,
    origin: &'a Origin,
    common_name: Option<(String, String)>,
    dns_names: Vec<(String, String)>,
    ip_addresses: Vec<(String, String)>,
    uris: Vec<(String, String)>,
    duration: Option<(String, String)>,
    renew_before: Option<(String, String)>,
    algorithm: Option<(String, String)>,
    size: Option<(i64, String)>,
    key_at: String,
    cn_at: String,
}

pub(super) struct Checker<'a> {
    repo: &'a Repository,
    facts: &'a BTreeMap<String, CaFacts>,
    live: Option<&'a Live>,
    out: &'a mut Vec<Diagnostic>,
    objs: Vec<Obj<'a>>,
}

fn items(list: &[String], base: &str) -> Vec<(String, String)> {
    list.iter()
        .enumerate()
        .map(|(i, v)| (v.clone(), format!("{base}[{i}]")))
        .collect()
}

/// Parses a cert-manager (Go) duration.
fn go_duration(s: &str) -> Result<Duration, String> {
    if s.contains('d') {
        return Err(format!(
            "{s:?} is not a Go duration: cert-manager has no d unit"
        ));
    }
    Duration::from_str(s).map_err(|e| e.to_string())
}

impl<'a> Checker<'a> {
    pub(super) fn new(
        repo: &'a Repository,
        facts: &'a BTreeMap<String, CaFacts>,
        live: Option<&'a Live>,
        out: &'a mut Vec<Diagnostic>,
    ) -> Self {
        Checker {
            repo,
            facts,
            live,
            out,
            objs: Vec::new(),
        }
    }

    fn push(&mut self, origin: &Origin, path: &str, message: String, hint: impl Into<String>) {
        self.out
            .push(Diagnostic::new(origin.at(path), message).hint(hint));
    }

    pub(super) fn run(mut self) {
        self.structure();
        self.generated_collisions();
        let issuers = self.issuers();
        self.certificates(&issuers);
        self.ingresses(&issuers);
        self.deliveries();
    }

    /// Structural checks of cert-manager objects, then typed parsing.
    fn structure(&mut self) {
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
    fn generated_collisions(&mut self) {
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
        let mut vault_seen: HashMap<(String, String, String), &Loaded<crate::model::VaultObject>> =
            HashMap::new();
        for o in &repo.vault {
            let class = match &o.spec {
                crate::model::VaultObject::KubernetesAuthRole(s) => ("auth role", s.mount.clone()),
                crate::model::VaultObject::AppRole(s) => ("auth role", s.mount.clone()),
                other => (other.kind(), String::new()),
            };
            let key = (class.0.to_string(), class.1, o.meta.name.clone());
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

    fn secret(&self, ns: &str, name: &str) -> Option<(&Obj<'a>, &Secret)> {
        self.objs.iter().find_map(|o| match &o.obj {
            ClusterObject::Secret(s) if o.ns() == ns && o.name() == name => Some((o, s)),
            _ => None,
        })
    }

    fn has_service_account(&self, ns: &str, name: &str) -> bool {
        self.objs.iter().any(|o| {
            matches!(o.obj, ClusterObject::ServiceAccount) && o.ns() == ns && o.name() == name
        })
    }

    /// Checks every Issuer and ClusterIssuer; returns what certificates need
    /// to know of each, by (namespace or None, name).
    fn issuers(&mut self) -> IssuerIndex {
        let mut found = HashMap::new();
        let list: Vec<(usize, bool, IssuerSpec)> = self
            .objs
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match &o.obj {
                ClusterObject::Issuer(s) => Some((i, false, s.clone())),
                ClusterObject::ClusterIssuer(s) => Some((i, true, s.clone())),
                _ => None,
            })
            .collect();
        for (i, cluster, spec) in list {
            let (origin, name, ns) = {
                let o = &self.objs[i];
                (o.origin().clone(), o.name().to_string(), o.ns().to_string())
            };
            let facts = if let Some(v) = &spec.vault {
                self.vault_issuer(&origin, &name, (!cluster).then_some(ns.as_str()), v)
            } else if let Some(a) = &spec.acme {
                IssuerFacts::Acme {
                    dns01: a.solvers.iter().any(|s| s.dns01.is_some()),
                }
            } else {
                IssuerFacts::Other
            };
            found.insert(((!cluster).then_some(ns), name), facts);
        }
        found
    }

    fn pki_known_live(&self, mount: &str, role: Option<&str>) -> bool {
        self.live.is_some_and(|l| match role {
            Some(r) => l.pki_roles.contains(&(mount.to_string(), r.to_string())),
            None => l.pki_mounts.contains(mount),
        })
    }

    /// One Vault issuer: its path, its auth, its policy.
    fn vault_issuer(
        &mut self,
        origin: &Origin,
        name: &str,
        ns: Option<&str>,
        v: &VaultIssuer,
    ) -> IssuerFacts {
        let what = match ns {
            Some(ns) => format!("Issuer {ns}/{name}"),
            None => format!("ClusterIssuer {name}"),
        };
        let sign = match parse_sign_path(&v.path) {
            Ok(s) => s,
            Err((message, hint)) => {
                self.push(
                    origin,
                    "spec.vault.path",
                    format!("{what}: {message}"),
                    hint,
                );
                return IssuerFacts::Other;
            }
        };
        let mounts: Vec<&str> = self
            .repo
            .pki_mounts()
            .map(|(m, _, _)| m.name.as_str())
            .collect();
        if self.repo.pki_mount(&sign.mount).is_none() {
            if !self.pki_known_live(&sign.mount, None) {
                self.push(
                    origin,
                    "spec.vault.path",
                    format!(
                        "{what}: vault path {} names mount {}, which is not a declared PkiMount",
                        v.path, sign.mount
                    ),
                    suggest::did_you_mean(&sign.mount, mounts.iter().copied()),
                );
            }
            return IssuerFacts::Other;
        }
        if let Some(role) = &sign.role {
            let declared = self
                .repo
                .pki_roles()
                .any(|(m, _, s)| m.name == *role && s.mount == sign.mount);
            if !declared {
                if !self.pki_known_live(&sign.mount, Some(role)) {
                    let roles: Vec<&str> = self
                        .repo
                        .pki_roles()
                        .filter(|(_, _, s)| s.mount == sign.mount)
                        .map(|(m, _, _)| m.name.as_str())
                        .collect();
                    self.push(
                        origin,
                        "spec.vault.path",
                        format!(
                            "{what}: vault path {} names role {role}, which is not a declared PkiRole on mount {}",
                            v.path, sign.mount
                        ),
                        suggest::did_you_mean(role, roles.iter().copied()),
                    );
                }
                return IssuerFacts::Other;
            }
        }
        let res_ns = ns.unwrap_or(CERT_MANAGER_NAMESPACE).to_string();
        let sign_path = v
            .path
            .trim_matches('/')
            .trim_start_matches("v1/")
            .to_string();
        if let Some(t) = &v.auth.token_secret_ref {
            self.secret_key(
                origin,
                "spec.vault.auth.tokenSecretRef",
                &what,
                &res_ns,
                &t.name,
                t.key.as_deref().unwrap_or("token"),
            );
        }
        if let Some(k) = &v.auth.kubernetes {
            self.kubernetes_auth(origin, name, ns, &what, &res_ns, &sign_path, k);
        }
        if let Some(a) = &v.auth.app_role {
            self.app_role_auth(origin, &what, &res_ns, &sign_path, a);
        }
        for (field, r) in [
            ("caBundleSecretRef", &v.ca_bundle_secret_ref),
            ("clientCertSecretRef", &v.client_cert_secret_ref),
            ("clientKeySecretRef", &v.client_key_secret_ref),
        ] {
            if let Some(r) = r {
                let default = match field {
                    "caBundleSecretRef" => "ca.crt",
                    "clientCertSecretRef" => "tls.crt",
                    _ => "tls.key",
                };
                self.secret_key(
                    origin,
                    &format!("spec.vault.{field}"),
                    &what,
                    &res_ns,
                    &r.name,
                    r.key.as_deref().unwrap_or(default),
                );
            }
        }
        if v.client_cert_secret_ref.is_some() != v.client_key_secret_ref.is_some() {
            self.push(
                origin,
                "spec.vault",
                format!("{what}: mTLS needs both clientCertSecretRef and clientKeySecretRef"),
                "give both, or neither",
            );
        }
        IssuerFacts::Vault {
            mount: sign.mount,
            role: sign.role,
        }
    }

    /// A Secret the repository declares must have the key an Issuer reads.
    fn secret_key(
        &mut self,
        origin: &Origin,
        at: &str,
        what: &str,
        ns: &str,
        name: &str,
        key: &str,
    ) {
        let Some((_, secret)) = self.secret(ns, name) else {
            return;
        };
        if !secret.keys.contains(key) {
            let keys: Vec<&str> = secret.keys.iter().map(String::as_str).collect();
            let hint = match suggest::closest(key, keys.iter().copied()) {
                Some(c) => format!("did you mean key: {c}?"),
                None if keys.is_empty() => format!("add the key {key} to Secret {ns}/{name}"),
                None => format!(
                    "set key: to one of {}, or add {key} to the Secret",
                    keys.join(", ")
                ),
            };
            self.push(
                origin,
                at,
                format!("{what}: Secret {ns}/{name} has no key {key}"),
                hint,
            );
        }
    }

    #[allow(clippy::too_many_arguments)] // One call site; the pieces are all different things.
    fn kubernetes_auth(
        &mut self,
        origin: &Origin,
        name: &str,
        ns: Option<&str>,
        what: &str,
        res_ns: &str,
        sign_path: &str,
        k: &crate::model::certmanager::VaultKubernetes,
    ) {
        let base = "spec.vault.auth.kubernetes";
        let mount_path = k
            .mount_path
            .as_deref()
            .unwrap_or(crate::model::certmanager::VaultKubernetes::DEFAULT_MOUNT_PATH);
        let mount_at = if k.mount_path.is_some() {
            format!("{base}.mountPath")
        } else {
            base.to_string()
        };
        let Some(mount) = mount_path
            .trim_end_matches('/')
            .strip_prefix("/v1/auth/")
            .filter(|m| !m.is_empty())
        else {
            self.push(
                origin,
                &mount_at,
                format!("{what}: mountPath {mount_path:?} is not /v1/auth/<mount>"),
                "write the auth mount as /v1/auth/kubernetes (cert-manager calls <mountPath>/login)",
            );
            return;
        };
        let live_mount = self.live.is_some_and(|l| l.auth_mounts.contains(mount));
        match self.repo.auth_mount(mount) {
            None if live_mount => return,
            None => {
                let of_type: Vec<&str> = self
                    .repo
                    .auth_mounts()
                    .filter(|(_, _, s)| s.auth_type == AuthType::Kubernetes)
                    .map(|(m, _, _)| m.name.as_str())
                    .collect();
                self.push(
                    origin,
                    &mount_at,
                    format!("{what}: auth mount {mount} is not a declared AuthMount"),
                    match suggest::closest(mount, of_type.iter().copied()) {
                        Some(c) => format!("did you mean /v1/auth/{c}?"),
                        None => format!("declare an AuthMount {mount} with type: kubernetes"),
                    },
                );
                return;
            }
            Some((_, _, m)) if m.auth_type != AuthType::Kubernetes => {
                self.push(
                    origin,
                    &mount_at,
                    format!(
                        "{what}: auth mount {mount} is of type {}, not kubernetes",
                        m.auth_type.as_str()
                    ),
                    "point mountPath at a kubernetes auth mount",
                );
                return;
            }
            Some(_) => {}
        }
        let role = self
            .repo
            .kubernetes_auth_roles()
            .find(|(m, _, s)| m.name == k.role && s.mount == mount);
        let Some((role_meta, _, role)) = role else {
            if self
                .live
                .is_some_and(|l| l.auth_roles.contains(&(mount.to_string(), k.role.clone())))
            {
                return;
            }
            let names: Vec<&str> = self
                .repo
                .kubernetes_auth_roles()
                .filter(|(_, _, s)| s.mount == mount)
                .map(|(m, _, _)| m.name.as_str())
                .collect();
            self.push(
                origin,
                &format!("{base}.role"),
                format!(
                    "{what}: role {} is not a KubernetesAuthRole on auth mount {mount}",
                    k.role
                ),
                suggest::did_you_mean(&k.role, names.iter().copied()),
            );
            return;
        };
        // The service account that logs in.
        let (sa, sa_at) = if let Some(r) = &k.service_account_ref {
            (
                Some(r.name.clone()),
                format!("{base}.serviceAccountRef.name"),
            )
        } else if let Some(r) = &k.secret_ref {
            let sa = self.secret(res_ns, &r.name).and_then(|(o, _)| {
                o.m.meta
                    .annotations
                    .get("kubernetes.io/service-account.name")
                    .cloned()
            });
            (sa, format!("{base}.secretRef.name"))
        } else {
            (None, base.to_string())
        };
        if let Some(r) = &k.secret_ref {
            self.secret_key(
                origin,
                &format!("{base}.secretRef"),
                what,
                res_ns,
                &r.name,
                r.key.as_deref().unwrap_or("token"),
            );
        }
        if let Some(sa) = &sa {
            let admits = |list: &[String], x: &str| list.iter().any(|i| i == "*" || i == x);
            if !admits(&role.bound_service_account_names, sa) {
                self.push(
                    origin,
                    &sa_at,
                    format!(
                        "{what}: KubernetesAuthRole {} does not admit service account {sa} (bound names: {})",
                        role_meta.name,
                        role.bound_service_account_names.join(", ")
                    ),
                    format!(
                        "add {sa} to boundServiceAccountNames of KubernetesAuthRole {}",
                        role_meta.name
                    ),
                );
            }
            if !admits(&role.bound_service_account_namespaces, res_ns) {
                self.push(
                    origin,
                    &sa_at,
                    format!(
                        "{what}: KubernetesAuthRole {} does not admit namespace {res_ns} (bound namespaces: {})",
                        role_meta.name,
                        role.bound_service_account_namespaces.join(", ")
                    ),
                    format!(
                        "add {res_ns} to boundServiceAccountNamespaces of KubernetesAuthRole {}",
                        role_meta.name
                    ),
                );
            }
        }
        if let (Some(aud), Some(r)) = (&role.audience, &k.service_account_ref) {
            let expected = match ns {
                Some(ns) => format!("vault://{ns}/{name}"),
                None => format!("vault://{name}"),
            };
            if *aud != expected && !r.audiences.contains(aud) {
                self.push(
                    origin,
                    &format!("{base}.serviceAccountRef"),
                    format!(
                        "{what}: KubernetesAuthRole {} wants audience {aud}, but cert-manager requests {expected}{}",
                        role_meta.name,
                        if r.audiences.is_empty() {
                            String::new()
                        } else {
                            format!(" and {}", r.audiences.join(", "))
                        }
                    ),
                    format!(
                        "set audience: {expected} on KubernetesAuthRole {}, or add {aud} to serviceAccountRef.audiences",
                        role_meta.name
                    ),
                );
            }
        }
        let role_name = role_meta.name.clone();
        let policies = role.token_policies.clone();
        self.grants(
            origin,
            what,
            sign_path,
            &format!("KubernetesAuthRole {role_name}"),
            &policies,
        );
        if let Some(r) = &k.service_account_ref
            && self.has_service_account(res_ns, &r.name)
        {
            let cm = self.cert_manager_of(origin);
            self.token_rbac(
                origin,
                &format!("{base}.serviceAccountRef.name"),
                what,
                res_ns,
                &r.name,
                &cm,
            );
        }
    }

    /// The cert-manager identity of an Issuer: its VaultIssuer's, or the
    /// default `cert-manager/cert-manager`.
    fn cert_manager_of(&self, origin: &Origin) -> CertManagerRef {
        self.repo
            .vault_issuers
            .iter()
            .find(|vi| vi.origin == *origin)
            .map(|vi| vi.spec.cert_manager.clone())
            .unwrap_or_default()
    }

    /// cert-manager must be allowed to `create` `serviceaccounts/token` for
    /// the Issuer's ServiceAccount.
    fn token_rbac(
        &mut self,
        origin: &Origin,
        at: &str,
        what: &str,
        ns: &str,
        sa: &str,
        cm: &CertManagerRef,
    ) {
        let roles: HashMap<(Option<&str>, &str), &Role> = self
            .objs
            .iter()
            .filter_map(|o| match &o.obj {
                ClusterObject::Role(r) => Some(((Some(o.ns()), o.name()), r)),
                ClusterObject::ClusterRole(r) => Some(((None, o.name()), r)),
                _ => None,
            })
            .collect();
        let binds = |b: &RoleBinding, binding_ns: Option<&str>| {
            let subject = b.subjects.iter().any(|s| {
                s.kind == "ServiceAccount"
                    && s.name == cm.service_account
                    && s.namespace.as_deref().or(binding_ns) == Some(cm.namespace.as_str())
            });
            let role = match b.role_ref.kind.as_str() {
                "Role" => binding_ns.and_then(|n| roles.get(&(Some(n), b.role_ref.name.as_str()))),
                "ClusterRole" => roles.get(&(None, b.role_ref.name.as_str())),
                _ => None,
            };
            subject
                && role.is_some_and(|r| {
                    r.rules
                        .iter()
                        .any(|rule| rule.allows("", "serviceaccounts/token", sa, "create"))
                })
        };
        let allowed = self.objs.iter().any(|o| match &o.obj {
            ClusterObject::RoleBinding(b) => o.ns() == ns && binds(b, Some(ns)),
            ClusterObject::ClusterRoleBinding(b) => binds(b, None),
            _ => false,
        });
        if !allowed {
            self.push(
                origin,
                at,
                format!(
                    "{what}: no Role/RoleBinding in the repository lets cert-manager ({}/{}) create tokens for ServiceAccount {ns}/{sa}",
                    cm.namespace, cm.service_account
                ),
                format!(
                    "add a Role in {ns} with rules: [{{apiGroups: [\"\"], resources: [serviceaccounts/token], resourceNames: [{sa}], verbs: [create]}}] and a RoleBinding of it to ServiceAccount {}/{} (checked because the repository declares ServiceAccount {ns}/{sa}; RBAC managed elsewhere is not seen)",
                    cm.namespace, cm.service_account
                ),
            );
        }
    }

    fn app_role_auth(
        &mut self,
        origin: &Origin,
        what: &str,
        res_ns: &str,
        sign_path: &str,
        a: &crate::model::certmanager::VaultAppRole,
    ) {
        let base = "spec.vault.auth.appRole";
        let mount = a.path.trim_matches('/');
        let mount = mount.strip_prefix("v1/auth/").unwrap_or(mount);
        let live_mount = self.live.is_some_and(|l| l.auth_mounts.contains(mount));
        match self.repo.auth_mount(mount) {
            None if live_mount => {}
            None => {
                let of_type: Vec<&str> = self
                    .repo
                    .auth_mounts()
                    .filter(|(_, _, s)| s.auth_type == AuthType::Approle)
                    .map(|(m, _, _)| m.name.as_str())
                    .collect();
                self.push(
                    origin,
                    &format!("{base}.path"),
                    format!("{what}: approle path {mount} is not a declared AuthMount"),
                    match suggest::closest(mount, of_type.iter().copied()) {
                        Some(c) => format!("did you mean {c}?"),
                        None => format!("declare an AuthMount {mount} with type: approle"),
                    },
                );
                return;
            }
            Some((_, _, m)) if m.auth_type != AuthType::Approle => {
                self.push(
                    origin,
                    &format!("{base}.path"),
                    format!(
                        "{what}: auth mount {mount} is of type {}, not approle",
                        m.auth_type.as_str()
                    ),
                    "point path at an approle auth mount",
                );
                return;
            }
            Some(_) => {}
        }
        let key = a.secret_ref.key.as_deref().unwrap_or("secretId");
        self.secret_key(
            origin,
            &format!("{base}.secretRef"),
            what,
            res_ns,
            &a.secret_ref.name,
            key,
        );
        // An AppRole delivering into this Secret must use the same key.
        let delivered = self.repo.app_roles().find_map(|(m, _, s)| {
            let to = &s.deliver_to.as_ref()?.secret;
            (to.namespace == res_ns && to.name == a.secret_ref.name)
                .then(|| (m.name.clone(), to.key.clone()))
        });
        if let Some((app, k)) = delivered
            && k != key
        {
            self.push(
                origin,
                &format!("{base}.secretRef"),
                format!(
                    "{what}: AppRole {app} delivers the secret ID under key {k}, but the Issuer reads key {key}"
                ),
                format!("set secretRef.key: {k}, or deliverTo.secret.key: {key} in AppRole {app}"),
            );
        }
        let found = self
            .repo
            .app_roles()
            .find(|(_, _, s)| s.mount == mount && s.role_id.as_deref() == Some(a.role_id.as_str()));
        if let Some((m, _, s)) = found {
            let name = m.name.clone();
            let policies = s.token_policies.clone();
            self.grants(
                origin,
                what,
                sign_path,
                &format!("AppRole {name}"),
                &policies,
            );
        }
    }

    /// The token policies of an auth role must grant `update` on the path.
    fn grants(
        &mut self,
        origin: &Origin,
        what: &str,
        sign_path: &str,
        role: &str,
        policies: &[String],
    ) {
        let declared: Vec<&crate::model::PolicySpec> = policies
            .iter()
            .filter_map(|p| {
                self.repo
                    .policies()
                    .find(|(m, _, _)| m.name == *p)
                    .map(|(_, _, s)| s)
            })
            .collect();
        if acl::grants_update(&declared, sign_path) {
            return;
        }
        let names = if policies.is_empty() {
            "none".to_string()
        } else {
            policies.join(", ")
        };
        self.push(
            origin,
            "spec.vault.path",
            format!("{what}: the policies of {role} ({names}) do not grant update on {sign_path}"),
            format!(
                "add `{{path: {sign_path}, capabilities: [update]}}` to the rules of one of its tokenPolicies"
            ),
        );
    }

    #[allow(clippy::too_many_arguments)] // Two call sites, each with its own positions.
    fn resolve(
        &mut self,
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

    fn certificates(&mut self, issuers: &IssuerIndex) {
        let certs: Vec<(Origin, String, String, CertificateSpec)> = self
            .objs
            .iter()
            .filter_map(|o| match &o.obj {
                ClusterObject::Certificate(c) => Some((
                    o.origin().clone(),
                    o.ns().to_string(),
                    o.name().to_string(),
                    c.clone(),
                )),
                _ => None,
            })
            .collect();
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
                        &origin,
                        "spec.issuerRef.kind",
                        format!("{what}: issuerRef kind {other} is not a cert-manager.io kind"),
                        "use Issuer or ClusterIssuer (or set issuerRef.group for an external issuer)",
                    );
                    continue;
                }
            };
            let Some(facts) = self.resolve(
                issuers,
                &origin,
                "spec.issuerRef.name",
                &what,
                &ns,
                &c.issuer_ref.name,
                cluster,
            ) else {
                continue;
            };
            let pk = c.private_key.clone().unwrap_or_default();
            let req = Request {
                what,
                origin: &origin,
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

    fn ingresses(&mut self, issuers: &IssuerIndex) {
        let list: Vec<IngressRow> = self
            .objs
            .iter()
            .filter_map(|o| match &o.obj {
                ClusterObject::Ingress(s) => Some((
                    o.origin().clone(),
                    o.ns().to_string(),
                    o.name().to_string(),
                    o.m.meta.annotations.clone(),
                    s.clone(),
                )),
                _ => None,
            })
            .collect();
        for (origin, ns, name, ann, spec) in list {
            let what = format!("Ingress {ns}/{name}");
            let (issuer, cluster, key) =
                match (ann.get(INGRESS_ISSUER), ann.get(INGRESS_CLUSTER_ISSUER)) {
                    (None, None) => continue,
                    (Some(_), Some(_)) => {
                        self.push(
                            &origin,
                            &format!("metadata.annotations.{INGRESS_CLUSTER_ISSUER}"),
                            format!(
                                "{what}: both {INGRESS_ISSUER} and {INGRESS_CLUSTER_ISSUER} are set"
                            ),
                            "keep one of the two annotations",
                        );
                        continue;
                    }
                    (Some(i), None) => (i.clone(), false, INGRESS_ISSUER),
                    (None, Some(i)) => (i.clone(), true, INGRESS_CLUSTER_ISSUER),
                };
            if ann
                .get("cert-manager.io/issuer-group")
                .is_some_and(|g| g != CERT_MANAGER_GROUP)
            {
                continue;
            }
            let ann_at = |k: &str| format!("metadata.annotations.{k}");
            if spec.tls.is_empty() {
                self.push(
                    &origin,
                    &ann_at(key),
                    format!("{what}: has a {key} annotation but no spec.tls"),
                    "add spec.tls with hosts and a secretName, or remove the annotation",
                );
                continue;
            }
            let Some(facts) =
                self.resolve(issuers, &origin, &ann_at(key), &what, &ns, &issuer, cluster)
            else {
                continue;
            };
            let mut dns = Vec::new();
            for (i, t) in spec.tls.iter().enumerate() {
                if t.secret_name.as_deref().is_none_or(str::is_empty) {
                    self.push(
                        &origin,
                        &format!("spec.tls[{i}]"),
                        format!("{what}: spec.tls[{i}] has no secretName"),
                        "cert-manager needs a secretName to write the certificate to",
                    );
                }
                dns.extend(items(&t.hosts, &format!("spec.tls[{i}].hosts")));
            }
            let a = |k: &str| ann.get(k).map(|v| (v.clone(), ann_at(k)));
            let size = ann
                .get("cert-manager.io/private-key-size")
                .and_then(|s| s.parse::<i64>().ok())
                .map(|s| (s, ann_at("cert-manager.io/private-key-size")));
            let req = Request {
                what,
                origin: &origin,
                common_name: a("cert-manager.io/common-name"),
                dns_names: dns,
                ip_addresses: Vec::new(),
                uris: Vec::new(),
                duration: a("cert-manager.io/duration"),
                renew_before: a("cert-manager.io/renew-before"),
                algorithm: a("cert-manager.io/private-key-algorithm"),
                size,
                key_at: ann_at(key),
                cn_at: ann_at(key),
            };
            self.request(&req, &facts);
        }
    }

    /// Checks one certificate request against its issuer.
    fn request(&mut self, r: &Request<'_>, facts: &IssuerFacts) {
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
                    self.push(
                        r.origin,
                        at,
                        format!("{what}: duration {e}"),
                        "write a Go duration such as 2160h or 720h30m",
                    );
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
                Err(e) => self.push(
                    r.origin,
                    at,
                    format!("{what}: renewBefore {e}"),
                    "write a Go duration such as 720h",
                ),
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

    fn names(&mut self, r: &Request<'_>, role_name: &str, role: &PkiRoleSpec) {
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
        &mut self,
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

    fn key(&mut self, r: &Request<'_>, role_name: &str, role: &PkiRoleSpec) {
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

    /// `AppRole.deliverTo.secret` must not be a Secret the repository
    /// declares (certplane writes it; two owners would fight).
    fn deliveries(&mut self) {
        let repo = self.repo;
        for (meta, origin, s) in repo.app_roles() {
            let Some(d) = &s.deliver_to else {
                continue;
            };
            let to = &d.secret;
            if let Some((o, _)) = self.secret(&to.namespace, &to.name) {
                let at = o.origin().at("metadata.name");
                self.push(
                    origin,
                    "spec.deliverTo.secret.name",
                    format!(
                        "AppRole {}: deliverTo Secret {}/{} is also declared at {at}",
                        meta.name, to.namespace, to.name
                    ),
                    "certplane writes the delivered Secret itself: remove the declared Secret, or deliver to another name",
                );
            }
        }
        for (meta, origin, m) in repo.pki_mounts() {
            let Some(crate::model::CaSpec::Intermediate(i)) = &m.ca else {
                continue;
            };
            let Some(to) = &i.deliver_key_to else {
                continue;
            };
            let to = &to.secret;
            if let Some((o, _)) = self.secret(&to.namespace, &to.name) {
                let at = o.origin().at("metadata.name");
                self.push(
                    origin,
                    "spec.ca.intermediate.deliverKeyTo.secret.name",
                    format!(
                        "PkiMount {}: deliverKeyTo Secret {}/{} is also declared at {at}",
                        meta.name, to.namespace, to.name
                    ),
                    "certplane writes the key's Secret itself: remove the declared Secret, or deliver to another name",
                );
            }
        }
    }
}

/// Vault's glob (`*` matches any run of characters).
pub fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// Whether a PKI role allows a DNS name (or hostname common name), the way
/// Vault's `validateNames` decides; `Err(why)` otherwise.
pub fn name_allowed(role: &PkiRoleSpec, name: &str) -> Result<(), String> {
    let lower = name.to_lowercase();
    let wildcard = lower.starts_with("*.");
    if wildcard && role.allow_wildcard_certificates == Some(false) {
        return Err("the role has allowWildcardCertificates: false".into());
    }
    if role.allow_any_name == Some(true) {
        return Ok(());
    }
    if role.allow_localhost.unwrap_or(true) && (lower == "localhost" || lower == "localdomain") {
        return Ok(());
    }
    let reduced = lower.strip_prefix("*.").unwrap_or(&lower);
    let domains = role.allowed_domains.clone().unwrap_or_default();
    for d in &domains {
        let d = d.to_lowercase();
        if role.allow_bare_domains == Some(true) && lower == d {
            return Ok(());
        }
        if role.allow_subdomains == Some(true)
            && (reduced.ends_with(&format!(".{d}")) || (wildcard && reduced == d))
        {
            return Ok(());
        }
        if role.allow_glob_domains == Some(true) && d.contains('*') && glob(&d, &lower) {
            return Ok(());
        }
    }
    if domains.is_empty() {
        return Err("the role has no allowedDomains".into());
    }
    let bare = domains.iter().any(|d| d.eq_ignore_ascii_case(&lower));
    let sub = domains
        .iter()
        .any(|d| reduced.ends_with(&format!(".{}", d.to_lowercase())));
    Err(if bare {
        "it is a bare domain and allowBareDomains is not true".into()
    } else if sub {
        "it is a subdomain and allowSubdomains is not true".into()
    } else {
        format!("it is not under allowedDomains ({})", domains.join(", "))
    })
}

fn role_hint(role_name: &str, name: &str) -> String {
    format!(
        "change the name, or widen PkiRole {role_name} (allowedDomains, allowSubdomains, allowBareDomains, allowGlobDomains) to allow {name}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_paths() {
        assert_eq!(
            parse_sign_path("pki_int/sign/web").unwrap(),
            SignPath {
                mount: "pki_int".into(),
                role: Some("web".into())
            }
        );
        assert_eq!(
            parse_sign_path("pki/int/issuer/int-2026/sign/web").unwrap(),
            SignPath {
                mount: "pki/int".into(),
                role: Some("web".into())
            }
        );
        assert_eq!(
            parse_sign_path("pki/sign-verbatim").unwrap(),
            SignPath {
                mount: "pki".into(),
                role: None
            }
        );
        assert_eq!(
            parse_sign_path("/v1/pki/sign-verbatim/web")
                .unwrap()
                .role
                .as_deref(),
            Some("web")
        );
        let (m, h) = parse_sign_path("pki_int/issue/web").unwrap_err();
        assert!(m.contains("issue endpoint"), "{m}");
        assert_eq!(h, "cert-manager sends a CSR: use pki_int/sign/web");
        assert!(parse_sign_path("pki_int/roles/web").is_err());
        assert!(parse_sign_path("sign/web").is_err());
    }

    fn role(domains: &[&str]) -> PkiRoleSpec {
        PkiRoleSpec {
            mount: "pki".into(),
            allowed_domains: Some(domains.iter().map(|d| d.to_string()).collect()),
            ..PkiRoleSpec::default()
        }
    }

    #[test]
    fn vault_name_rules() {
        let mut r = role(&["example.com"]);
        assert!(
            name_allowed(&r, "www.example.com")
                .unwrap_err()
                .contains("allowSubdomains")
        );
        assert!(
            name_allowed(&r, "example.com")
                .unwrap_err()
                .contains("allowBareDomains")
        );
        r.allow_subdomains = Some(true);
        assert!(name_allowed(&r, "a.b.example.com").is_ok());
        assert!(name_allowed(&r, "*.example.com").is_ok());
        assert!(
            name_allowed(&r, "example.org")
                .unwrap_err()
                .contains("not under")
        );
        r.allow_wildcard_certificates = Some(false);
        assert!(name_allowed(&r, "*.example.com").is_err());
        let mut g = role(&["*.svc.cluster.local"]);
        assert!(name_allowed(&g, "a.ns.svc.cluster.local").is_err());
        g.allow_glob_domains = Some(true);
        assert!(name_allowed(&g, "a.ns.svc.cluster.local").is_ok());
        assert!(glob(
            "spiffe://cluster.local/*",
            "spiffe://cluster.local/ns/a/sa/b"
        ));
        assert!(!glob("spiffe://cluster.local/*", "spiffe://other/ns"));
    }

    #[test]
    fn go_durations_have_no_days() {
        assert_eq!(go_duration("2160h").unwrap().as_secs(), 2160 * 3600);
        assert!(go_duration("90d").unwrap_err().contains("no d unit"));
    }
}
