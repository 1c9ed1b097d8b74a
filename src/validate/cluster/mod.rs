//! Cross-checks between the cluster objects and the Vault declarations
//! (FORMAT.md section 3): does each cert-manager Issuer point at a sign
//! endpoint the repository (or the live Vault) has, can it log in there,
//! may it sign, and will each Certificate (or annotated Ingress) it serves
//! be accepted by the role behind it.
//!
//! Every cert-manager object is first checked structurally against the
//! built-in schema (`structure`); the typed objects of
//! [`crate::model::certmanager`] are read only from objects that pass. The
//! checks run on the repository after `expand`, so objects generated from a
//! `VaultIssuer` are checked like written ones and point at the VaultIssuer.
//!
//! One concern per file: `structure` (CRD structure, generated objects
//! colliding with written ones), `sign_path` (an Issuer's `spec.vault.path`
//! against the declared mounts and roles), `issuer_auth` (how an Issuer
//! logs in: Kubernetes, AppRole and token auth against auth mounts, roles,
//! policies, RBAC and Secrets; its TLS Secrets), `certificates` (names, lifetimes and keys
//! of a Certificate against its role and CA), `ingress` (annotated
//! Ingresses, checked like Certificates), `role_allows` (what a PKI role
//! allows, decided as Vault does) and `deliveries` (Secrets certplane
//! writes are not declared as well). This file holds what they share: the
//! typed objects and the index of issuers.

mod cert_auth;
mod certificates;
mod deliveries;
mod ingress;
mod issuer_auth;
mod role_allows;
mod sign_path;
mod structure;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::ca::CaFacts;
use crate::diagnostic::Diagnostic;
use crate::model::certmanager::{
    CERT_MANAGER_NAMESPACE, ClusterObject, IssuerSpec, Secret, VaultIssuer,
};
use crate::model::{Loaded, Origin, Repository};

pub use role_allows::{NameRefusal, glob, name_allowed};
pub use sign_path::{SignPath, SignPathError, parse_sign_path};

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

/// A Vault issuer being checked, with what its auth checks need.
struct IssuerCtx<'x> {
    /// Where the Issuer is written.
    origin: &'x Origin,
    /// Its name.
    name: &'x str,
    /// Its namespace; `None` for a ClusterIssuer.
    ns: Option<&'x str>,
    /// `Issuer <ns>/<name>` or `ClusterIssuer <name>`: how messages name it.
    what: String,
    /// Where its Secrets and ServiceAccount live: its namespace, or
    /// cert-manager's for a ClusterIssuer.
    res_ns: String,
    /// Its `spec.vault.path` without slashes around it and `v1/`.
    sign_path: String,
}

/// Issuers by (namespace, `None` for a ClusterIssuer; name).
type IssuerIndex = HashMap<(Option<String>, String), IssuerFacts>;

/// The cluster-side checks of one repository: the cert-manager objects,
/// read once into [`Obj`]s, checked against the Vault declarations and the
/// CA facts `super::validate_with_live` gathered.
pub(super) struct Checker<'a> {
    repo: &'a Repository,
    facts: &'a BTreeMap<String, CaFacts>,
    live: Option<&'a Live>,
    /// Where problems go (pushed to while the objects are read).
    out: std::cell::RefCell<&'a mut Vec<Diagnostic>>,
    objs: Vec<Obj<'a>>,
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
            out: std::cell::RefCell::new(out),
            objs: Vec::new(),
        }
    }

    fn push(&self, origin: &Origin, path: &str, message: String, hint: impl Into<String>) {
        self.out
            .borrow_mut()
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
    fn issuers(&self) -> IssuerIndex {
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

    /// One Vault issuer: its path, its auth, its policy.
    fn vault_issuer(
        &self,
        origin: &Origin,
        name: &str,
        ns: Option<&str>,
        v: &VaultIssuer,
    ) -> IssuerFacts {
        let what = match ns {
            Some(ns) => format!("Issuer {ns}/{name}"),
            None => format!("ClusterIssuer {name}"),
        };
        let Some(sign) = self.sign_target(origin, &what, v) else {
            return IssuerFacts::Other;
        };
        let issuer = IssuerCtx {
            origin,
            name,
            ns,
            what,
            res_ns: ns.unwrap_or(CERT_MANAGER_NAMESPACE).to_string(),
            sign_path: v
                .path
                .trim_matches('/')
                .trim_start_matches("v1/")
                .to_string(),
        };
        self.vault_auth(&issuer, v);
        self.tls_secrets(&issuer, v);
        IssuerFacts::Vault {
            mount: sign.mount,
            role: sign.role,
        }
    }
}
