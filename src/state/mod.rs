//! Desired and observed state in the one shape the planner compares.
//!
//! Both sides speak Vault's API language: a resource is an [`Addr`] plus the
//! API parameters certplane manages there, normalised (durations in seconds,
//! lists sorted where Vault does not keep order). The desired side is built
//! from the repository by [`crate::desired`]; the observed side is read from
//! Vault by [`crate::vault::observe()`]. The planner compares only the keys the
//! desired side names, so a Vault default that the user did not write is
//! never a change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::addr::Addr;
use crate::model::{KeyType, Location, Source};

mod fields;

pub use fields::{Fields, Key};

/// Addresses a resource or a change depends on: shared, since a planned
/// change lists the very addresses of its desired resource.
pub type Addrs = std::sync::Arc<[Addr]>;

/// The kinds of resource, each with its descriptor: listed once, in the
/// registry of [`crate::vault::kinds`].
pub use crate::vault::kinds::ResourceKind;

/// One resource certplane wants.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredResource {
    /// Its address (the API path it is read from).
    pub addr: Addr,
    /// What it is.
    pub kind: ResourceKind,
    /// Managed API parameters, normalised.
    pub fields: Fields,
    /// Secret parameters (e.g. `token_reviewer_jwt`): read at apply time,
    /// shown as `(sensitive)`, compared only as "set / not set".
    pub secrets: BTreeMap<String, SecretFrom>,
    /// Resources that must exist before this one.
    pub depends_on: Addrs,
    /// Where the user declared it.
    pub origin: Location,
    /// For [`ResourceKind::Issuer`]: how the CA is made (boxed: a CA is
    /// rare, and a repository holds one resource per object).
    pub ca: Option<Box<DesiredCa>>,
}

/// Where the value of a secret parameter comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum SecretFrom {
    /// A source of the repository (`value`, `env`, `file`), read at apply
    /// time.
    Source(Source),
    /// A key of a Secret in the cluster (the token of a reviewer
    /// ServiceAccount): read after the cluster half is applied, since the
    /// Secret may be created by that very apply.
    ClusterSecret(ClusterSecretKey),
    /// The parameter must not be set (Vault uses its own pod identity):
    /// planned as a change when Vault has one, and cleared by the write.
    Unset,
}

/// A key of a namespaced Secret in the cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClusterSecretKey {
    /// The Secret's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
    /// The key of its `data`.
    pub key: String,
    /// The ServiceAccount whose token it holds, for messages.
    pub service_account: String,
}

impl std::fmt::Display for ClusterSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Secret {}/{} (key {})",
            self.namespace, self.name, self.key
        )
    }
}

/// The desired state: every resource, in declaration order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Desired {
    /// All resources.
    pub resources: Vec<DesiredResource>,
}

/// A CA as certplane wants it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DesiredCa {
    /// The PKI mount holding the issuer.
    pub mount: String,
    /// `issuer_name` inside the mount; absent: the mount's default issuer.
    pub issuer_name: Option<String>,
    /// What identifies the CA: a change here is a rotation, never an edit.
    pub identity: CaIdentity,
    /// How to make it.
    pub method: CaMethod,
    /// Lifetime asked for (seconds), if set.
    pub ttl: Option<u64>,
    /// Rotate when less than this (seconds) remains.
    pub rotate_before: Option<u64>,
    /// How a rotation is staged (`rotation:` of the CA).
    #[serde(default)]
    pub rotation: RotationSettings,
}

/// How a rotation of a CA is staged (see [`crate::plan`], "rotation").
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RotationSettings {
    /// Seconds the new issuer waits, published beside the old one, before it
    /// becomes the default (stage 2): the time the trust bundle needs to
    /// reach every client. `None`: the next apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<u64>,
    /// Seconds a retired issuer is kept after its notAfter before it is
    /// deleted (stage 3); [`DEFAULT_SAFETY_BUFFER`] when not declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_buffer: Option<u64>,
    /// How an intermediate signed by a mount follows a rotation of that
    /// mount (`rotation.followParent`; cross-signed by default).
    #[serde(default)]
    pub follow_parent: crate::model::FollowParent,
    /// The CA's `settings.manualChain` is declared: a cross-sign leaves the
    /// chains of the twins to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manual_chain_declared: bool,
}

/// How long a retired issuer is kept after its notAfter by default: one
/// day. No leaf outlives its issuer (Vault's `leaf_not_after_behavior`
/// `err` or `truncate`), so the buffer only covers clocks that disagree.
pub const DEFAULT_SAFETY_BUFFER: u64 = 86_400;

/// The `usage` of an issuer certplane retired: it keeps signing CRLs for
/// the leaves it issued, and issues nothing new.
pub const RETIRED_USAGE: &str = "read-only,crl-signing";

impl RotationSettings {
    /// The safety buffer in seconds.
    pub fn safety_buffer(&self) -> u64 {
        self.safety_buffer.unwrap_or(DEFAULT_SAFETY_BUFFER)
    }
}

/// The fields that identify a CA. Compared with the live issuer's certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CaIdentity {
    /// Subject CN.
    pub common_name: String,
    /// Key algorithm; absent for an import (taken from the bundle).
    pub key_type: Option<KeyType>,
    /// Key size (0 for ed25519); absent for an import.
    pub key_bits: Option<u32>,
    /// CN of the signer (the root's own CN for a root); absent: not known
    /// before signing (manual).
    pub issued_by: Option<String>,
    /// SHA-256 of the certificate DER, for an import: the certificate itself
    /// is the identity.
    pub cert_sha256: Option<String>,
}

/// How a CA is made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaMethod {
    /// `<mount>/root/generate/internal` (or `issuers/generate/root/internal`).
    Root {
        /// Parameters of the generate call (common_name, key_type, ttl, ...).
        params: Fields,
    },
    /// `<mount>/intermediate/generate/{internal|exported}`, then signing,
    /// then `<mount>/intermediate/set-signed`.
    Intermediate {
        /// Parameters of the generate call.
        params: Fields,
        /// Parameters for the signer (ttl, max_path_length, ...).
        sign_params: Fields,
        /// `generate/exported` instead of `generate/internal`.
        export_key: bool,
        /// Who signs.
        signer: Signer,
    },
    /// `<mount>/config/ca` (`issuers/import/bundle`) from a PEM bundle.
    Import {
        /// The bundle (certificate + key): read again at apply time.
        bundle: Source,
    },
}

/// The start of the name of every key certplane generates for an
/// intermediate. The key keeps it from `issuers/generate/intermediate` until
/// its signed certificate is imported and the new issuer is named and made
/// the default; then the name is cleared. A key with this name and no issuer
/// is an interrupted apply's: the next apply resumes with it (or, when the
/// declared CA no longer wants it, deletes it). Keys without it (made by
/// hand, or in use) are never deleted.
pub const PENDING_KEY_PREFIX: &str = "certplane-pending-";

impl DesiredCa {
    /// The name of the key generated for this CA while it is pending
    /// (intermediates, and roots made by a rotation): derived from the issuer name and the key's type
    /// and size, so that a key of another type is never resumed, e.g.
    /// `certplane-pending-int-2026-ec256`.
    pub fn pending_key_name(&self) -> Option<String> {
        if matches!(self.method, CaMethod::Import { .. }) {
            return None;
        }
        let key = match (self.identity.key_type, self.identity.key_bits) {
            (Some(t), Some(b)) if b != 0 => format!("{}{b}", t.as_str()),
            (Some(t), _) => t.as_str().to_string(),
            (None, _) => "key".to_string(),
        };
        let issuer = self.issuer_name.as_deref().unwrap_or("default");
        Some(format!("{PENDING_KEY_PREFIX}{issuer}-{key}"))
    }
}

/// Who signs an intermediate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Signer {
    /// `<mount>/root/sign-intermediate` of another mount (its default issuer).
    Mount {
        /// The parent mount.
        mount: String,
        /// The parent's issuer name, when the parent names one.
        issuer_ref: Option<String>,
    },
    /// Signed in-process with rcgen.
    External {
        /// The signing CA's certificate (PEM), read at load time.
        ca_cert_pem: String,
        /// The signing CA's key: read at apply time, never stored.
        ca_key: Source,
    },
    /// Signed by hand.
    Manual {
        /// Where the signed certificate will be.
        certificate_file: PathBuf,
        /// Its content, if the file exists already.
        certificate_pem: Option<String>,
        /// Where certplane writes the CSR (`<certificate_file>.csr`).
        csr_file: PathBuf,
        /// The CSR, if one was generated by an earlier apply.
        csr_pem: Option<String>,
    },
}

/// One issuer as it lives in a PKI mount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedIssuer {
    /// `issuer_id`.
    pub id: String,
    /// `issuer_name` (may be empty).
    pub name: String,
    /// Subject CN of its certificate.
    pub common_name: String,
    /// Issuer CN of its certificate.
    pub issued_by: String,
    /// Key algorithm of its certificate.
    pub key_type: Option<KeyType>,
    /// Key size (0 for ed25519).
    pub key_bits: u32,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// basicConstraints pathLen (`None`: unlimited).
    pub max_path_length: Option<u32>,
    /// SHA-256 of the certificate DER, hex.
    pub cert_sha256: String,
    /// Whether it is the mount's default issuer.
    pub is_default: bool,
    /// The id of its key.
    #[serde(default)]
    pub key_id: String,
    /// notBefore, Unix seconds.
    #[serde(default)]
    pub not_before: i64,
    /// Its `usage` as Vault lists it (`read-only,issuing-certificates,...`);
    /// empty when not read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub usage: String,
    /// Its certificate (PEM; public).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate: String,
    /// Its `manual_chain` (issuer ids; empty: Vault builds the chain).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manual_chain: Vec<String>,
    /// Its `leaf_not_after_behavior` (`err`, `truncate`, `permit`; empty
    /// when not read), whether the repository declares it or not.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub leaf_not_after_behavior: String,
}

impl ObservedIssuer {
    /// Whether it may no longer issue (its `usage` lacks
    /// `issuing-certificates`): retired by a rotation, or by hand.
    pub fn is_retired(&self) -> bool {
        !self.usage.is_empty()
            && !self
                .usage
                .split(',')
                .any(|u| u.trim() == "issuing-certificates")
    }

    /// The name a rotation gives the issuer it supersedes (the declared
    /// name, then the start of its id): how the next plans find it again.
    pub fn superseded_name(&self, declared: &str) -> String {
        let short: String = self.id.chars().take(8).collect();
        format!("{declared}-{short}")
    }
}

/// One key of a PKI mount (`<mount>/keys`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedKey {
    /// `key_id`.
    pub id: String,
    /// `key_name` (may be empty).
    pub name: String,
}

/// What Vault has now.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Observed {
    /// Resources that exist, by address, with the parameters Vault returned
    /// (normalised like the desired side).
    pub resources: BTreeMap<Addr, Fields>,
    /// The issuers of each PKI mount that exists, by mount path.
    pub issuers: BTreeMap<String, Vec<ObservedIssuer>>,
    /// The keys of each PKI mount that holds (or will hold) an
    /// intermediate, by mount path: what interrupted applies left.
    #[serde(default)]
    pub keys: BTreeMap<String, Vec<ObservedKey>>,
    /// When the observation was made (Unix seconds): lets the pure planner
    /// decide `rotateBefore` without a clock.
    pub now: i64,
    /// Every live secrets-engine and auth-method path (no trailing `/`),
    /// declared or not: a new mount inside (or around) one is refused by
    /// Vault, which only the live tables can tell.
    #[serde(default, skip_serializing_if = "LiveMounts::is_empty")]
    pub live_mounts: LiveMounts,
}

/// The paths of the live mount tables (those that were read).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LiveMounts {
    /// `sys/mounts` paths.
    #[serde(default)]
    pub secrets: BTreeSet<String>,
    /// `sys/auth` paths.
    #[serde(default)]
    pub auth: BTreeSet<String>,
}

impl LiveMounts {
    /// Whether no table was read (or both are empty).
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.auth.is_empty()
    }
}

/// A live Vault object certplane manages that the repository no longer
/// declares: a prune candidate of its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// Its address.
    pub addr: Addr,
    /// Its kind.
    pub kind: ResourceKind,
    /// For a PKI mount: whether it holds a CA (deleting it destroys the CA).
    pub holds_ca: bool,
    /// Which repository it belongs to.
    pub owner: Owner,
}

/// Which repository a Vault object certplane manages belongs to: the
/// repository identity recorded on it (mount option `certplane-repository`,
/// or the first line of a policy; a role belongs to its mount's owner).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// Made by an older certplane that did not record a repository. Never
    /// deleted on that basis; adopted by the repository that declares it.
    Unrecorded,
    /// Made for the repository with this identity.
    Repository(String),
}

/// What certplane manages in Vault, read for ownership and prune: the
/// owner of every mount and auth mount it tagged, and the managed objects
/// the desired state does not declare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Tagged mounts (`sys/mounts/<path>`) and auth mounts
    /// (`sys/auth/<path>`), by address.
    pub mounts: BTreeMap<Addr, Owner>,
    /// Managed objects that are not declared: tagged mounts, policies with
    /// certplane's first line, and roles under mounts of this repository.
    pub orphans: Vec<Orphan>,
}
