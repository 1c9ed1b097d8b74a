//! One place per Vault kind: how each kind of the repository is lowered to
//! resources, and how each kind of resource is read, written, deleted,
//! ordered, owned and granted.
//!
//! A Vault kind is two things: its spec in [`crate::model`] (the YAML, with
//! [`crate::model::VaultSpec`]: its name, address and the files it names)
//! and its descriptor here, in a file of its own (`kinds/<kind>.rs`): an
//! [`ObjectKind`] that lowers an object to [`DesiredResource`]s, and one
//! [`Resource`] per kind of resource it lowers to. The `registry!` below
//! lists every kind once; it makes [`ResourceKind`] and the dispatch, so a
//! kind without a descriptor does not compile, and the tests at the end
//! check that every table is complete (a schema, an order, the
//! capabilities) for every kind.
//!
//! The provider ([`super::observe()`], [`super::apply()`],
//! [`super::prune`], [`super::needs`]) and the planner interpret the
//! descriptors; none of them names a kind.
//!
//! Adding a Vault kind: its spec and `impl VaultSpec` in
//! `src/model/vault.rs`, one line in the list of `src/model/mod.rs`, its
//! descriptor in `src/vault/kinds/<kind>.rs`, and one line (and a
//! `ResourceKind` per resource it lowers to) in the registry below; a new
//! shape of API path is a variant of [`crate::addr::VaultAddr`].

mod app_role;
mod auth_mount;
mod cert_auth_role;
mod kubernetes_auth_role;
mod pki_mount;
mod pki_role;
pub mod pki_settings;
pub mod policy;

use serde::{Deserialize, Serialize};

use super::needs::Needs;
use crate::addr::VaultAddr;
use crate::diagnostic::Diagnostic;
use crate::model::{Loaded, Meta, Origin, Repository, VaultObject, VaultSpec};
use crate::state::DesiredResource;

pub use pki_mount::{ca_common_name, ca_issuer_name};

/// A Vault kind as written in YAML: what its objects lower to.
pub trait ObjectKind {
    /// The spec it is written with.
    type Spec: VaultSpec;

    /// The kinds of resource its objects lower to.
    const RESOURCES: &'static [ResourceKind];

    /// Lowers one object to the resources Vault should have: their
    /// addresses, managed fields, secret fields and dependencies. May read
    /// the (public) files the spec names; secrets stay sources.
    fn lower(
        repo: &Repository,
        meta: &Meta,
        origin: &Origin,
        spec: &Self::Spec,
    ) -> Result<Vec<DesiredResource>, Diagnostic>;
}

/// Which mount table a resource lives under: its mount exists when the
/// table has it, and nothing under a missing mount is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// `sys/mounts` (PKI mounts and what is in them).
    Secrets,
    /// `sys/auth` (auth methods and their roles and config).
    Auth,
    /// Neither (policies, cluster objects).
    None,
}

/// How the live state of a resource is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// From its entry of the mount table (`type`, `description`, `config`,
    /// certplane's owner tags): one read of the table for every mount.
    MountEntry,
    /// `GET <path>`: the reply's data.
    Data,
    /// The issuers of its PKI mount (a CA).
    Issuers,
    /// The keys of its PKI mount (a key has no plain read: Vault answers
    /// 500 to one that does not exist).
    Keys,
    /// A CA's settings: its issuer, found by name (or as the mount's
    /// default) in the mount's issuer list, then `GET <mount>/issuer/<id>`
    /// (Vault answers 500 for an issuer that does not exist).
    IssuerSettings,
    /// Not read from Vault (a cluster object).
    Nothing,
}

/// How a create or an update of a resource is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Enabling a mount (`POST`, once, tagged as certplane's), then
    /// `<path>/tune` for an update.
    Mount,
    /// `POST <path>` with the managed fields: the same body twice leaves the
    /// same object, so it is repeated after a busy answer.
    Data,
    /// Making, adopting or rotating a CA (`vault/issuer.rs`).
    Issuer,
    /// `PATCH <path>` with the managed fields only (a CA's settings: a
    /// `POST` would reset what it does not name).
    Patch,
    /// Not written to Vault (a cluster object).
    Nothing,
}

/// How a resource is deleted (prune, or a plan that deletes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delete {
    /// `DELETE <path>`.
    Path,
    /// It goes with its mount; a delete of its own is refused.
    WithMount,
    /// Never deleted by certplane (a CA).
    Never,
    /// Not deleted in Vault (a cluster object).
    Nothing,
}

/// What says which repository a resource belongs to (ownership, adoption
/// and prune; see [`super::prune`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Belongs {
    /// Its mount options (`managed-by`, `certplane-repository`).
    MountOptions,
    /// The first line of its text ([`super::prune::policy_marker`]).
    PolicyMarker,
    /// The owner of the mount it lives in.
    Mount,
}

/// Where prune finds the objects of a kind that no repository declares:
/// listed under each mount of a type that this repository owns.
#[derive(Clone, Copy, Debug)]
pub struct Listed {
    /// The mount type (`pki`, `kubernetes`, `approle`, `cert`).
    pub mount_type: &'static str,
    /// The path that lists them, for a mount path (`auth/<m>/role`).
    pub list: fn(&str) -> String,
    /// The address of one of them, by mount path and name.
    pub addr: fn(&str, &str) -> VaultAddr,
}

/// How one kind of resource is read, written, deleted, ordered, owned and
/// granted. Static data: the provider and the planner interpret it.
#[derive(Clone, Copy, Debug)]
pub struct Resource {
    /// The mount table it lives under.
    pub table: Table,
    /// How its live state is read.
    pub read: Read,
    /// How a create or an update is written.
    pub write: Write,
    /// How a delete is made.
    pub delete: Delete,
    /// Whether its writes may go concurrently with the others of a run of
    /// changes that do not depend on each other (plain parameter writes).
    pub batch: bool,
    /// Its place among independent changes (lower first: what others
    /// depend on by nature, e.g. auth methods and policies before roles).
    pub apply_order: u16,
    /// What says which repository it belongs to.
    pub belongs: Belongs,
    /// Where prune finds undeclared ones (`None`: it never does).
    pub listed: Option<Listed>,
    /// Its place among prune's deletes (lower first: what lives in a
    /// mount before the mount).
    pub prune_order: u16,
    /// The capabilities planning, re-checking and applying it need, added
    /// to the policy ([`super::needs`]).
    pub needs: fn(&DesiredResource, &VaultAddr, &mut Needs),
}

/// Capabilities that write a resource as a whole: create, read, update.
pub(crate) fn needs_write(_: &DesiredResource, addr: &VaultAddr, n: &mut Needs) {
    n.add(addr.path(), super::needs::WRITE);
}

/// Capabilities of what certplane does not hold in Vault.
pub(crate) fn needs_nothing(_: &DesiredResource, _: &VaultAddr, _: &mut Needs) {}

/// Reading the entry of the path a mount's path is under
/// (`sys/mounts/pki` for `sys/mounts/pki/int`): Vault answers the entry of
/// a nested path with the mount that holds it, so the check before a
/// write tells `pki/int` from `pki` by asking for both
/// ([`super::observe::observe_one`]). A mount's configuration, which the
/// whole table (always readable) shows anyway.
pub(crate) fn needs_parent_entry(entry: &str, n: &mut Needs) {
    let Some((table, path)) = ["sys/mounts/", "sys/auth/"]
        .iter()
        .find_map(|t| Some((*t, entry.strip_prefix(t)?)))
    else {
        return;
    };
    if let Some((parent, _)) = path.rsplit_once('/') {
        n.add(format!("{table}{parent}"), &["read"]);
    }
}

/// A cluster object: applied by the cluster provider, never by Vault's.
const CLUSTER_OBJECT: Resource = Resource {
    table: Table::None,
    read: Read::Nothing,
    write: Write::Nothing,
    delete: Delete::Nothing,
    batch: false,
    apply_order: 200,
    belongs: Belongs::Mount,
    listed: None,
    prune_order: 90,
    needs: needs_nothing,
};

/// An AppRole secret ID delivered into a cluster Secret (after the role).
const SECRET_DELIVERY: Resource = Resource {
    apply_order: 210,
    ..CLUSTER_OBJECT
};

/// A mount's CA trust bundle published into a cluster object (a
/// ConfigMap or a trust-manager Bundle), after the Vault half.
const TRUST_BUNDLE: Resource = Resource {
    apply_order: 220,
    ..CLUSTER_OBJECT
};

/// Lists every Vault kind once: the object kinds with their descriptors,
/// and every kind of resource with its descriptor. Makes [`ResourceKind`],
/// [`lower`] and [`resources_of`]; a match that misses a kind does not
/// compile.
macro_rules! registry {
    (
        objects { $($object:ident => $kind:ty,)* }
        resources { $($(#[$doc:meta])* $res:ident => $desc:expr,)* }
    ) => {
        /// The kinds of resource certplane manages; each has its
        /// [`Resource`] descriptor ([`ResourceKind::descriptor`]).
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            schemars::JsonSchema,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum ResourceKind {
            $($(#[$doc])* $res,)*
        }

        impl ResourceKind {
            /// Every kind of resource.
            pub const ALL: &'static [ResourceKind] = &[$(ResourceKind::$res),*];

            /// How it is read, written, deleted, ordered, owned and granted.
            pub fn descriptor(self) -> &'static Resource {
                match self {
                    $(ResourceKind::$res => &$desc,)*
                }
            }
        }

        /// Lowers one object of the repository to the resources Vault
        /// should have.
        pub fn lower(
            repo: &Repository,
            obj: &Loaded<VaultObject>,
        ) -> Result<Vec<DesiredResource>, Diagnostic> {
            match &obj.spec {
                $(VaultObject::$object(s) => {
                    <$kind as ObjectKind>::lower(repo, &obj.meta, &obj.origin, s)
                })*
            }
        }

        /// The kinds of resource an object lowers to.
        pub fn resources_of(obj: &VaultObject) -> &'static [ResourceKind] {
            match obj {
                $(VaultObject::$object(_) => <$kind as ObjectKind>::RESOURCES,)*
            }
        }
    };
}

registry! {
    objects {
        PkiMount => pki_mount::PkiMount,
        PkiRole => pki_role::PkiRole,
        Policy => policy::Policy,
        AuthMount => auth_mount::AuthMount,
        KubernetesAuthRole => kubernetes_auth_role::KubernetesAuthRole,
        AppRole => app_role::AppRole,
        CertAuthRole => cert_auth_role::CertAuthRole,
    }
    resources {
        /// `sys/auth/<path>`: an auth method.
        AuthMount => auth_mount::AUTH_MOUNT,
        /// `auth/<path>/config`.
        AuthConfig => auth_mount::AUTH_CONFIG,
        /// `sys/policies/acl/<name>`.
        Policy => policy::POLICY,
        /// `sys/mounts/<path>`: a PKI secrets engine (and its tune).
        Mount => pki_mount::MOUNT,
        /// `<mount>/issuer/<name>`: a CA inside a PKI mount.
        Issuer => pki_mount::ISSUER,
        /// `<mount>/key/<name>`: a key certplane generated for an
        /// intermediate (named `certplane-pending-...`) that
        /// an interrupted apply left behind: released (renamed) or deleted,
        /// never created.
        PkiKey => pki_mount::PKI_KEY,
        /// `<mount>/config/urls`.
        MountUrls => pki_mount::URLS,
        /// `<mount>/config/crl`.
        MountCrl => pki_settings::CRL,
        /// `<mount>/config/cluster`.
        MountCluster => pki_settings::CLUSTER,
        /// `<mount>/config/auto-tidy`.
        MountAutoTidy => pki_settings::AUTO_TIDY,
        /// `<mount>/config/acme`.
        MountAcme => pki_settings::ACME,
        /// The settings of a CA, patched at `<mount>/issuer/<name>`.
        IssuerSettings => pki_settings::ISSUER_SETTINGS,
        /// `<mount>/roles/<name>`.
        Role => pki_role::ROLE,
        /// `auth/<mount>/role/<name>` of a kubernetes mount.
        KubernetesAuthRole => kubernetes_auth_role::KUBERNETES_AUTH_ROLE,
        /// `auth/<mount>/role/<name>` of an approle mount.
        AppRole => app_role::APP_ROLE,
        /// `auth/<mount>/role/<name>/role-id`: a fixed AppRole role ID.
        AppRoleId => app_role::APP_ROLE_ID,
        /// `auth/<mount>/certs/<name>`: a role of TLS certificate auth.
        CertAuthRole => cert_auth_role::CERT_AUTH_ROLE,
        /// A cluster object (server-side applied; not a Vault resource).
        ClusterObject => CLUSTER_OBJECT,
        /// An AppRole secret ID delivered into a cluster Secret.
        SecretDelivery => SECRET_DELIVERY,
        /// A mount's CA trust bundle published into a cluster object.
        TrustBundle => TRUST_BUNDLE,
    }
}

impl ResourceKind {
    /// Its place among independent changes (lower first).
    pub fn rank(self) -> u16 {
        self.descriptor().apply_order
    }
}

/// The kinds of resource prune lists under a mount of type `mount_type`.
pub fn listed_under(mount_type: &str) -> impl Iterator<Item = (ResourceKind, Listed)> + '_ {
    ResourceKind::ALL.iter().filter_map(move |&k| {
        k.descriptor()
            .listed
            .filter(|l| l.mount_type == mount_type)
            .map(|l| (k, l))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::addr::Addr;
    use crate::model::VAULT_KINDS;

    /// A repository with an object of every Vault kind.
    const EVERY_KIND: &str = r#"
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec:
  maxLeaseTTL: 87600h
  ca: {root: {commonName: Root, issuerName: root-1, keyType: ec, ttl: 87600h}}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki_int}
spec:
  maxLeaseTTL: 43800h
  ca:
    intermediate:
      commonName: Int
      keyType: ec
      ttl: 43800h
      signedBy: {mount: pki}
      settings: {usage: [read-only, issuing-certificates], leafNotAfterBehavior: err}
  urls: {issuingCertificates: [http://v/v1/pki_int/ca]}
  crl: {expiry: 72h}
  cluster: {path: http://v/v1/pki_int}
  autoTidy: {enabled: true, tidyCertStore: true}
  acme: {enabled: true}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {name: web}
spec: {mount: pki_int, allowedDomains: [example.com], maxTTL: 72h}
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {name: sign}
spec: {rules: [{path: pki_int/sign/web, capabilities: [update]}]}
---
apiVersion: certplane.dev/v1alpha1
kind: AuthMount
metadata: {name: kubernetes}
spec:
  type: kubernetes
  kubernetes:
    host: https://kubernetes.default.svc
    tokenReviewer: {vaultPodIdentity: true}
---
apiVersion: certplane.dev/v1alpha1
kind: AuthMount
metadata: {name: approle}
spec: {type: approle}
---
apiVersion: certplane.dev/v1alpha1
kind: KubernetesAuthRole
metadata: {name: issuer}
spec:
  mount: kubernetes
  boundServiceAccountNames: [issuer]
  boundServiceAccountNamespaces: [sandbox]
  tokenPolicies: [sign]
---
apiVersion: certplane.dev/v1alpha1
kind: AppRole
metadata: {name: cm}
spec: {mount: approle, tokenPolicies: [sign], roleId: fixed-role-id}
---
apiVersion: certplane.dev/v1alpha1
kind: AuthMount
metadata: {name: cert}
spec: {type: cert}
---
apiVersion: certplane.dev/v1alpha1
kind: CertAuthRole
metadata: {name: cert-manager}
spec: {mount: cert, certificateFile: client-ca.pem, tokenPolicies: [sign]}
"#;

    /// A CA certificate (its key is dropped).
    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "Client CA");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.self_signed(&key).unwrap().pem()
    }

    /// The fixture loaded and lowered (the directory lives as long as the
    /// repository is used: lowering reads the certificate again).
    fn every_kind() -> (tempfile::TempDir, Repository, crate::state::Desired) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("repo.yaml"), EVERY_KIND).unwrap();
        std::fs::write(dir.path().join("client-ca.pem"), ca_pem()).unwrap();
        let repo = crate::load::load(dir.path()).unwrap_or_else(|d| panic!("{d}"));
        let desired = crate::desired::build(&repo).unwrap_or_else(|d| panic!("{d}"));
        (dir, repo, desired)
    }

    #[test]
    fn every_kind_is_in_the_registry_once_with_its_resources() {
        let (_dir, repo, desired) = every_kind();
        let declared: BTreeSet<&str> = repo.vault.iter().map(|o| o.spec.kind()).collect();
        assert_eq!(
            declared,
            VAULT_KINDS.iter().copied().collect(),
            "the fixture declares every Vault kind"
        );
        // Each object lowers only to the resource kinds its descriptor names.
        for o in &repo.vault {
            let made = lower(&repo, o).unwrap();
            for r in &made {
                assert!(
                    resources_of(&o.spec).contains(&r.kind),
                    "{} lowered to {:?}, not in its RESOURCES",
                    o.spec.kind(),
                    r.kind
                );
            }
            assert_eq!(
                made[0].addr,
                Addr::from(o.spec.address(&o.meta.name)),
                "an object's first resource is at its address"
            );
        }
        // Every Vault resource kind belongs to exactly one object kind
        // (a PKI key is only ever found, never declared).
        let mut owners: BTreeMap<ResourceKind, Vec<&str>> = BTreeMap::new();
        for o in &repo.vault {
            for k in resources_of(&o.spec) {
                let list = owners.entry(*k).or_default();
                if !list.contains(&o.spec.kind()) {
                    list.push(o.spec.kind());
                }
            }
        }
        for k in ResourceKind::ALL {
            let d = k.descriptor();
            let vault = d.read != Read::Nothing;
            assert_eq!(
                owners.get(k).map_or(0, Vec::len),
                usize::from(vault),
                "{k:?}: one object kind lowers to it, if it is Vault's"
            );
        }
        // The fixture lowers to every Vault kind but a PKI key (found only).
        let lowered: BTreeSet<ResourceKind> = desired.resources.iter().map(|r| r.kind).collect();
        let vault: BTreeSet<ResourceKind> = ResourceKind::ALL
            .iter()
            .copied()
            .filter(|k| k.descriptor().read != Read::Nothing && *k != ResourceKind::PkiKey)
            .collect();
        assert_eq!(lowered, vault);
    }

    #[test]
    fn every_descriptor_is_complete_and_consistent() {
        let orders: BTreeSet<u16> = ResourceKind::ALL.iter().map(|k| k.rank()).collect();
        assert_eq!(
            orders.len(),
            ResourceKind::ALL.len(),
            "every kind has an apply order of its own"
        );
        for k in ResourceKind::ALL {
            let d = k.descriptor();
            let vault = d.read != Read::Nothing;
            assert_eq!(vault, d.write != Write::Nothing, "{k:?}");
            assert_eq!(vault, d.delete != Delete::Nothing, "{k:?}");
            assert!(
                !(d.batch && d.write != Write::Data),
                "{k:?}: only plain parameter writes go in batches"
            );
            if d.read == Read::MountEntry {
                assert_eq!(d.belongs, Belongs::MountOptions, "{k:?}");
                assert_eq!(d.write, Write::Mount, "{k:?}");
            }
            if let Some(l) = d.listed {
                assert_eq!(d.belongs, Belongs::Mount, "{k:?}");
                let a = (l.addr)("m", "n");
                assert!(
                    a.path().starts_with(&(l.list)("m")),
                    "{k:?}: {a} is listed at {}",
                    (l.list)("m")
                );
                assert!(
                    d.prune_order < ResourceKind::Mount.descriptor().prune_order
                        && d.prune_order < ResourceKind::AuthMount.descriptor().prune_order,
                    "{k:?}: pruned before its mount"
                );
            }
        }
    }

    #[test]
    fn every_kind_has_a_schema() {
        let files: Vec<String> = crate::model::schema::all()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        for kind in VAULT_KINDS {
            assert!(
                files.contains(&crate::model::schema::file_name(kind)),
                "{kind} has no schema"
            );
        }
    }

    /// Whether `rule` (a policy path, maybe ending in `*`) covers `path`.
    fn covers(rule: &str, path: &str) -> bool {
        match rule.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => rule == path,
        }
    }

    #[test]
    fn a_nested_mount_may_read_the_entry_of_the_path_it_is_under() {
        let mut n = Needs::default();
        needs_parent_entry("sys/mounts/pki/int", &mut n);
        needs_parent_entry("sys/auth/k8s/prod", &mut n);
        needs_parent_entry("sys/mounts/pki_int", &mut n);
        needs_parent_entry("pki/roles/web", &mut n);
        let rules: Vec<(&str, Vec<&str>)> = n
            .rules
            .iter()
            .map(|(r, c)| (r.as_str(), c.iter().map(|c| c.as_ref()).collect()))
            .collect();
        assert_eq!(
            rules,
            vec![
                ("sys/auth/k8s", vec!["read"]),
                ("sys/mounts/pki", vec!["read"])
            ]
        );
    }

    #[test]
    fn every_resource_kind_has_the_capabilities_it_is_read_and_written_with() {
        let (_dir, _, desired) = every_kind();
        let needs = super::super::needs::needs(&desired);
        let granted = |path: &str, cap: &str| {
            needs
                .rules
                .iter()
                .any(|(rule, caps)| covers(rule, path) && caps.contains(cap))
        };
        for r in &desired.resources {
            let Addr::Vault(v) = &r.addr else { continue };
            let d = r.kind.descriptor();
            let path = v.path();
            match d.read {
                Read::MountEntry => {
                    let table = if d.table == Table::Auth {
                        "sys/auth"
                    } else {
                        "sys/mounts"
                    };
                    assert!(granted(table, "read"), "{path}");
                    // The check before a write reads the entry alone, and
                    // that of the path it is under.
                    assert!(granted(&path, "read"), "{path}: read");
                    if let Some((parent, _)) = path.rsplit_once('/')
                        && parent != table
                    {
                        assert!(granted(parent, "read"), "{path}: {parent}");
                    }
                }
                Read::Data => assert!(granted(&path, "read"), "{path}: read"),
                Read::IssuerSettings => {
                    assert!(granted(&v.api_path(), "read"), "{path}: read");
                    assert!(
                        granted(&format!("{}/issuers", v.mount_path()), "list"),
                        "{path}"
                    )
                }
                Read::Issuers | Read::Keys => {
                    assert!(
                        granted(&format!("{}/issuers", v.mount_path()), "list"),
                        "{path}"
                    )
                }
                Read::Nothing => {}
            }
            // The check before a write finds the mount by its own entry.
            if let Some(parent @ (VaultAddr::Mount { .. } | VaultAddr::AuthMount { .. })) =
                v.parent()
            {
                assert!(granted(&parent.path(), "read"), "{path}: its mount's entry");
            }
            match d.write {
                Write::Mount | Write::Data => {
                    assert!(granted(&path, "update"), "{path}: update");
                    assert!(granted(&path, "create"), "{path}: create");
                }
                Write::Patch => assert!(granted(&v.api_path(), "patch"), "{path}: patch"),
                Write::Issuer => assert!(
                    granted(&format!("{}/config/issuers", v.mount_path()), "update"),
                    "{path}"
                ),
                Write::Nothing => {}
            }
            if let Some(parent) = v.parent()
                && let Some((_, l)) = listed_under(if d.table == Table::Auth {
                    desired
                        .resources
                        .iter()
                        .find(|p| p.addr == Addr::from(parent.clone()))
                        .and_then(|p| p.fields.get("type"))
                        .and_then(|t| t.as_str())
                        .unwrap_or("")
                } else {
                    "pki"
                })
                .find(|(k, _)| *k == r.kind)
            {
                assert!(
                    granted(&(l.list)(v.mount_path()), "list"),
                    "{path}: prune lists it"
                );
            }
        }
    }

    #[test]
    fn a_field_that_is_not_written_is_neither_shown_nor_written() {
        // The fixture's pki_int writes only `urls.issuingCertificates`.
        let (dir, _, desired) = every_kind();
        let urls_addr = Addr::parse_vault("pki_int/config/urls").unwrap();
        let urls = desired
            .resources
            .iter()
            .find(|r| r.addr == urls_addr)
            .expect("pki_int/config/urls");
        let keys: Vec<&str> = urls.fields.keys().collect();
        assert_eq!(keys, ["issuing_certificates"]);
        // Created: the plan shows (and the write sends: a change's `after`
        // is its body) the written list only.
        let plan = crate::plan::plan(&desired, &crate::state::Observed::default());
        let change = plan.changes.iter().find(|c| c.addr == urls_addr).unwrap();
        let after: Vec<&str> = change.after.iter().flat_map(|a| a.keys()).collect();
        assert_eq!(after, ["issuing_certificates"]);
        let shown = crate::plan::render::human(&plan, crate::plan::render::Style::default());
        assert!(shown.contains("issuing_certificates = "), "{shown}");
        for unmanaged in ["ocsp_servers", "crl_distribution_points"] {
            assert!(!shown.contains(unmanaged), "{unmanaged} shown:\n{shown}");
        }
        // Live OCSP servers set by hand are left alone: no change.
        let mut observed = crate::state::Observed::default();
        let live: crate::state::Fields = serde_json::json!({
            "issuing_certificates": ["http://v/v1/pki_int/ca"],
            "crl_distribution_points": [],
            "ocsp_servers": ["http://ocsp.example"],
        })
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .collect();
        observed.resources.insert(urls_addr.clone(), live);
        let plan = crate::plan::plan(&desired, &observed);
        let change = plan.changes.iter().find(|c| c.addr == urls_addr).unwrap();
        assert_eq!(change.action, crate::plan::Action::NoOp, "{change:?}");
        // An auth role without tokenPolicies does not manage them.
        let mut repo = crate::load::load(dir.path()).unwrap();
        for o in &mut repo.vault {
            if let VaultObject::AppRole(s) = &mut o.spec {
                s.token_policies = None;
            }
        }
        let approle = repo
            .vault
            .iter()
            .find(|o| o.spec.kind() == "AppRole")
            .unwrap();
        let made = lower(&repo, approle).unwrap();
        assert!(
            !made[0].fields.contains_key("token_policies"),
            "{:?}",
            made[0].fields
        );
        let kube = repo
            .vault
            .iter()
            .find(|o| o.spec.kind() == "KubernetesAuthRole")
            .unwrap();
        let made = lower(&repo, kube).unwrap();
        assert_eq!(
            made[0].fields["token_policies"],
            serde_json::json!(["sign"])
        );
    }
}
