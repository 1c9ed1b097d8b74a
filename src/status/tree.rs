//! The PKI tree of `status`, built from what the repository declares and
//! what the live Vault holds: each declared PKI mount with its issuers
//! (default, retired, cross-signed twins, pending keys), who signed each
//! (the parent issuer whose subjectKeyIdentifier is the issuer's
//! authorityKeyIdentifier, else the declared hierarchy), and under each
//! issuer the child mounts it signed and the cert-manager Issuers and
//! Certificates of the repository that sign through it. Pure: the clock is
//! the observation's.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::live::{LiveIssuer, LivePki};
use crate::model::certmanager::{CERT_MANAGER_GROUP, ClusterObject};
use crate::model::{CaSpec, Repository, SignedBy};
use crate::state::PENDING_KEY_PREFIX;
use crate::validate::cluster::parse_sign_path;

/// How a declared mount gets its CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaKind {
    /// A root generated in Vault.
    Root,
    /// An intermediate.
    Intermediate,
    /// Imported from a PEM bundle.
    Import,
    /// The mount declares no CA.
    None,
}

impl CaKind {
    /// How the human output names it.
    pub fn describe(self) -> &'static str {
        match self {
            CaKind::Root => "root CA",
            CaKind::Intermediate => "intermediate CA",
            CaKind::Import => "imported CA",
            CaKind::None => "no CA declared",
        }
    }
}

/// Who signs a declared intermediate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclaredSigner {
    /// Another PKI mount.
    Mount(String),
    /// A CA outside Vault whose key certplane is given.
    External,
    /// Signed by hand.
    Manual,
}

/// A cert-manager Certificate of the repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertificateNode {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The Secret it fills.
    pub secret_name: String,
    /// Its common name, else its first DNS name.
    pub subject: Option<String>,
    /// `spec.duration` as written.
    pub duration: Option<String>,
    /// Where it is written (`file:line`).
    pub source: String,
}

/// A cert-manager Issuer or ClusterIssuer of the repository that signs
/// through Vault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterIssuerNode {
    /// `Issuer` or `ClusterIssuer`.
    pub kind: String,
    /// Its namespace (`None` for a ClusterIssuer).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// `spec.vault.path`, without slashes around it.
    pub path: String,
    /// The PKI role it signs with (`None` for sign-verbatim).
    pub role: Option<String>,
    /// The issuer the path or its role pins (`None`: the default).
    pub issuer_ref: Option<String>,
    /// Where it is written (`file:line`).
    pub source: String,
    /// The Certificates of the repository it issues.
    pub certificates: Vec<CertificateNode>,
}

impl ClusterIssuerNode {
    /// `ClusterIssuer homelab`, `Issuer sandbox/vault`.
    pub fn title(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// Who signed an issuer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Parent {
    /// Its own key (a root).
    SelfSigned,
    /// A live issuer of a declared mount (its SKI is this issuer's AKI,
    /// or its signature checks out).
    Issuer {
        /// The parent's mount.
        mount: String,
        /// The parent issuer's id.
        id: String,
        /// The parent issuer's name.
        name: String,
    },
    /// The mount the repository declares as signer, whose live issuers do
    /// not include the one that signed (it was replaced, or not read).
    Declared {
        /// The declared signing mount.
        mount: String,
        /// The CN of the certificate's issuer.
        issued_by: String,
    },
    /// A CA outside the declared mounts.
    Outside {
        /// The CN of the certificate's issuer.
        issued_by: String,
    },
}

/// How an issuer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// More than `rotateBefore` left.
    Ok,
    /// Retired (its usage lacks `issuing-certificates`): no longer issues.
    Retired,
    /// Inside its mount's `rotateBefore` window.
    Rotate,
    /// Past its notAfter.
    Expired,
}

impl Health {
    /// The word the outputs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Retired => "retired",
            Health::Rotate => "rotate",
            Health::Expired => "expired",
        }
    }
}

/// One live issuer of a declared mount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IssuerNode {
    /// `issuer_id`.
    pub id: String,
    /// `issuer_name` (may be empty).
    pub name: String,
    /// Subject CN.
    pub common_name: String,
    /// `key_id`.
    pub key_id: String,
    /// `usage`.
    pub usage: Vec<String>,
    /// The mount's default issuer.
    pub default: bool,
    /// Usage lacks `issuing-certificates`.
    pub retired: bool,
    /// Signs for the mount: the default issuer, the issuer named as the
    /// declared CA, or one a role or Issuer pins. Only these raise an
    /// alert.
    pub in_use: bool,
    /// The ids of the other issuers of the mount on the same key
    /// (cross-signed twins).
    pub twins: Vec<String>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// notAfter minus the observation's time (negative: expired).
    pub seconds_left: i64,
    /// How it stands.
    pub health: Health,
    /// Who signed it.
    pub parent: Parent,
    /// The cert-manager Issuers that sign through it.
    pub cluster_issuers: Vec<ClusterIssuerNode>,
}

impl IssuerNode {
    /// Its name, else its id.
    pub fn label(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

/// A key of a mount with certplane's pending name and no issuer: an
/// interrupted apply's, resumed by the next apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingKey {
    /// `key_id`.
    pub id: String,
    /// `key_name`.
    pub name: String,
}

/// Where a mount hangs in the tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// The parent issuer's mount.
    pub mount: String,
    /// The parent issuer's id.
    pub issuer: String,
}

/// One declared PKI mount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MountNode {
    /// Its path.
    pub path: String,
    /// How it gets its CA.
    pub ca: CaKind,
    /// Who signs its intermediate.
    pub signed_by: Option<DeclaredSigner>,
    /// The declared issuer name of its CA.
    pub issuer_name: Option<String>,
    /// `rotateBefore`, seconds.
    pub rotate_before: Option<u64>,
    /// Whether Vault has it.
    pub exists: bool,
    /// Its live issuers that hold a key, newest first.
    pub issuers: Vec<IssuerNode>,
    /// Keys left by an interrupted apply.
    pub pending_keys: Vec<PendingKey>,
    /// The issuer under which the tree shows it (`None`: at the top).
    pub placed_under: Option<Placement>,
    /// cert-manager Issuers on this mount whose issuer is not live (the
    /// mount has none yet, or the pinned one is gone).
    pub unresolved: Vec<ClusterIssuerNode>,
}

/// A CA that needs attention: exit 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// The mount.
    pub mount: String,
    /// The issuer's id.
    pub issuer_id: String,
    /// Its name.
    pub issuer_name: String,
    /// Its CN.
    pub common_name: String,
    /// `rotate` or `expired`.
    pub health: Health,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Seconds left (negative: since it expired).
    pub seconds_left: i64,
    /// The mount's `rotateBefore`, seconds.
    pub rotate_before: Option<u64>,
}

/// The whole picture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The repository identity.
    pub repository: String,
    /// The Vault address.
    pub vault: String,
    /// When Vault was read (Unix seconds).
    pub now: i64,
    /// Every declared PKI mount, in declaration order.
    pub mounts: Vec<MountNode>,
    /// The CAs inside their `rotateBefore` window or expired.
    pub alerts: Vec<Alert>,
}

impl Status {
    /// The mounts at the top of the tree.
    pub fn top(&self) -> impl Iterator<Item = &MountNode> {
        self.mounts.iter().filter(|m| m.placed_under.is_none())
    }

    /// The mounts placed under `mount`'s issuer `issuer`.
    pub fn children<'a>(
        &'a self,
        mount: &'a str,
        issuer: &'a str,
    ) -> impl Iterator<Item = &'a MountNode> + 'a {
        self.mounts.iter().filter(move |m| {
            m.placed_under
                .as_ref()
                .is_some_and(|p| p.mount == mount && p.issuer == issuer)
        })
    }
}

/// What the repository declares of one mount.
struct DeclaredMount {
    path: String,
    ca: CaKind,
    signed_by: Option<DeclaredSigner>,
    issuer_name: Option<String>,
    rotate_before: Option<u64>,
}

/// The declared PKI mounts, in declaration order.
fn declared_mounts(repo: &Repository) -> Vec<DeclaredMount> {
    repo.pki_mounts()
        .map(|(meta, _, spec)| {
            let (ca, signed_by, issuer_name, rotate_before) = match &spec.ca {
                Some(CaSpec::Root(r)) => (
                    CaKind::Root,
                    None,
                    r.issuer_name.clone(),
                    r.rotate_before.map(|d| d.as_secs()),
                ),
                Some(CaSpec::Intermediate(i)) => (
                    CaKind::Intermediate,
                    Some(match &i.signed_by {
                        SignedBy::Mount(m) => DeclaredSigner::Mount(m.trim_matches('/').into()),
                        SignedBy::External(_) => DeclaredSigner::External,
                        SignedBy::Manual(_) => DeclaredSigner::Manual,
                    }),
                    i.issuer_name.clone(),
                    i.rotate_before.map(|d| d.as_secs()),
                ),
                Some(CaSpec::Import(i)) => (CaKind::Import, None, i.issuer_name.clone(), None),
                None => (CaKind::None, None, None, None),
            };
            DeclaredMount {
                path: meta.name.trim_matches('/').to_string(),
                ca,
                signed_by,
                issuer_name,
                rotate_before,
            }
        })
        .collect()
}

/// The paths of the declared PKI mounts: what `status` reads.
pub fn mount_paths(repo: &Repository) -> Vec<String> {
    declared_mounts(repo).into_iter().map(|m| m.path).collect()
}

/// An Issuer's `spec.vault.path` pinning an issuer:
/// `<mount>/issuer/<ref>/sign/<role>`.
fn pinned_issuer(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.split('/').collect();
    let n = segs.len();
    (n >= 5 && segs[n - 4] == "issuer" && !segs[n - 3].is_empty()).then(|| segs[n - 3].to_string())
}

/// The cert-manager Issuers of the repository that sign through Vault, with
/// their mount and the Certificates they issue.
fn cluster_issuers(repo: &Repository) -> Vec<(String, ClusterIssuerNode)> {
    let mut issuers = Vec::new();
    let mut certificates = Vec::new();
    for m in &repo.manifests {
        let Ok(Some(obj)) = ClusterObject::from_manifest(&m.spec) else {
            continue;
        };
        let ns = m.meta.namespace.clone().unwrap_or_else(|| "default".into());
        let file = m
            .origin
            .file
            .strip_prefix(&repo.root)
            .unwrap_or(&m.origin.file);
        let source = format!("{}:{}", file.display(), m.origin.line);
        match obj {
            ClusterObject::Issuer(spec) | ClusterObject::ClusterIssuer(spec) => {
                let cluster = m.spec.get("kind").and_then(|k| k.as_str()) == Some("ClusterIssuer");
                let Some(v) = spec.vault else { continue };
                let path = v
                    .path
                    .trim_matches('/')
                    .trim_start_matches("v1/")
                    .to_string();
                let Ok(sign) = parse_sign_path(&path) else {
                    continue;
                };
                let role_ref = sign.role.as_ref().and_then(|r| {
                    repo.pki_roles()
                        .find(|(rm, _, rs)| {
                            rm.name == *r && rs.mount.trim_matches('/') == sign.mount
                        })
                        .and_then(|(_, _, rs)| rs.issuer_ref.clone())
                });
                let issuer_ref = pinned_issuer(&path).or(role_ref).filter(|r| r != "default");
                issuers.push((
                    sign.mount.clone(),
                    ClusterIssuerNode {
                        kind: if cluster { "ClusterIssuer" } else { "Issuer" }.into(),
                        namespace: (!cluster).then_some(ns),
                        name: m.meta.name.clone(),
                        path,
                        role: sign.role,
                        issuer_ref,
                        source,
                        certificates: Vec::new(),
                    },
                ));
            }
            ClusterObject::Certificate(c) => {
                let group = c.issuer_ref.group.as_deref().unwrap_or(CERT_MANAGER_GROUP);
                let kind = c.issuer_ref.kind.as_deref().unwrap_or("Issuer");
                if group != CERT_MANAGER_GROUP {
                    continue;
                }
                let node = CertificateNode {
                    namespace: ns.clone(),
                    name: m.meta.name.clone(),
                    secret_name: c.secret_name.clone(),
                    subject: c
                        .common_name
                        .clone()
                        .or_else(|| c.dns_names.first().cloned()),
                    duration: c.duration.clone(),
                    source,
                };
                let key = match kind {
                    "ClusterIssuer" => (None, c.issuer_ref.name.clone()),
                    "Issuer" => (Some(ns), c.issuer_ref.name.clone()),
                    _ => continue,
                };
                certificates.push((key, node));
            }
            _ => {}
        }
    }
    for (key, cert) in certificates {
        if let Some((_, i)) = issuers
            .iter_mut()
            .find(|(_, i)| i.namespace == key.0 && i.name == key.1)
        {
            i.certificates.push(cert);
        }
    }
    issuers
}

/// Whether `issuer` is the one `r` (a name or an id) names.
fn names(issuer: &LiveIssuer, r: &str) -> bool {
    issuer.id == r || (!issuer.name.is_empty() && issuer.name == r)
}

/// Who signed `child` of `mount`, among the live issuers of every declared
/// mount: the issuer whose SKI is the child's AKI (another issuer before
/// itself: a root's AKI is its own SKI), else one whose subject is the
/// child's issuer DN and whose key verifies the child's signature.
fn parent_of(mount: &DeclaredMount, child: &LiveIssuer, all: &[(&str, &LiveIssuer)]) -> Parent {
    let c = &child.cert;
    let self_signed = match (&c.aki, &c.ski) {
        (Some(a), Some(s)) => a == s,
        _ => {
            c.subject == c.issuer
                && (c.der.is_empty() || crate::pki::x509::is_signed_by(&c.der, &c.der))
        }
    };
    if self_signed {
        return Parent::SelfSigned;
    }
    let by_aki = c.aki.as_ref().and_then(|aki| {
        all.iter()
            .filter(|(_, p)| p.cert.ski.as_ref() == Some(aki) && p.id != child.id)
            .min_by_key(|(m, _)| (*m == mount.path, *m))
    });
    let by_signature = || {
        all.iter().find(|(_, p)| {
            p.id != child.id
                && p.cert.subject == c.issuer
                && !c.der.is_empty()
                && crate::pki::x509::is_signed_by(&c.der, &p.cert.der)
        })
    };
    if let Some((m, p)) = by_aki.or_else(by_signature) {
        return Parent::Issuer {
            mount: m.to_string(),
            id: p.id.clone(),
            name: p.name.clone(),
        };
    }
    match &mount.signed_by {
        Some(DeclaredSigner::Mount(m)) => Parent::Declared {
            mount: m.clone(),
            issued_by: c.issued_by.clone(),
        },
        _ => Parent::Outside {
            issued_by: c.issued_by.clone(),
        },
    }
}

fn health(issuer: &LiveIssuer, retired: bool, rotate_before: Option<u64>, now: i64) -> Health {
    let left = issuer.cert.not_after - now;
    if retired {
        Health::Retired
    } else if left <= 0 {
        Health::Expired
    } else if rotate_before.is_some_and(|b| left < b as i64) {
        Health::Rotate
    } else {
        Health::Ok
    }
}

/// Builds the tree of the repository's PKI mounts from what Vault holds.
pub fn build(repo: &Repository, live: &LivePki) -> Status {
    let declared = declared_mounts(repo);
    let now = live.now;
    let empty = super::live::LiveMount::default();
    let live_of = |path: &str| live.mounts.get(path).unwrap_or(&empty);
    let all: Vec<(&str, &LiveIssuer)> = declared
        .iter()
        .flat_map(|d| {
            live_of(&d.path)
                .issuers
                .iter()
                .map(move |i| (d.path.as_str(), i))
        })
        .collect();
    let mut by_mount: BTreeMap<String, Vec<ClusterIssuerNode>> = BTreeMap::new();
    for (mount, ci) in cluster_issuers(repo) {
        by_mount.entry(mount).or_default().push(ci);
    }
    let role_refs: BTreeSet<(String, String)> = repo
        .pki_roles()
        .filter_map(|(_, _, r)| {
            r.issuer_ref
                .clone()
                .filter(|i| i != "default")
                .map(|i| (r.mount.trim_matches('/').to_string(), i))
        })
        .collect();

    let mut mounts = Vec::new();
    for d in &declared {
        let lm = live_of(&d.path);
        let mut pinned = by_mount.remove(&d.path).unwrap_or_default();
        let mut issuers: Vec<IssuerNode> = lm
            .issuers
            .iter()
            .map(|i| {
                let default = lm.default_id.as_deref() == Some(i.id.as_str());
                let retired =
                    !i.usage.is_empty() && !i.usage.iter().any(|u| u == "issuing-certificates");
                let in_use = default
                    || d.issuer_name.as_deref().is_some_and(|n| names(i, n))
                    || role_refs.iter().any(|(m, r)| *m == d.path && names(i, r))
                    || pinned
                        .iter()
                        .any(|c| c.issuer_ref.as_deref().is_some_and(|r| names(i, r)));
                IssuerNode {
                    id: i.id.clone(),
                    name: i.name.clone(),
                    common_name: i.cert.common_name.clone(),
                    key_id: i.key_id.clone(),
                    usage: i.usage.clone(),
                    default,
                    retired,
                    in_use,
                    twins: lm
                        .issuers
                        .iter()
                        .filter(|o| o.id != i.id && o.key_id == i.key_id)
                        .map(|o| o.id.clone())
                        .collect(),
                    not_before: i.cert.not_before,
                    not_after: i.cert.not_after,
                    seconds_left: i.cert.not_after - now,
                    health: health(i, retired, d.rotate_before, now),
                    parent: parent_of(d, i, &all),
                    cluster_issuers: Vec::new(),
                }
            })
            .collect();
        // Each cert-manager Issuer under the issuer it signs with.
        let mut unresolved = Vec::new();
        for ci in pinned.drain(..) {
            let target = match &ci.issuer_ref {
                Some(r) => issuers
                    .iter_mut()
                    .find(|i| i.id == *r || (!i.name.is_empty() && i.name == *r)),
                None => issuers.iter_mut().find(|i| i.default),
            };
            match target {
                Some(i) => i.cluster_issuers.push(ci),
                None => unresolved.push(ci),
            }
        }
        let used: BTreeSet<&str> = lm.issuers.iter().map(|i| i.key_id.as_str()).collect();
        let pending_keys = lm
            .keys
            .iter()
            .filter(|k| k.name.starts_with(PENDING_KEY_PREFIX) && !used.contains(k.id.as_str()))
            .map(|k| PendingKey {
                id: k.id.clone(),
                name: k.name.clone(),
            })
            .collect();
        issuers.sort_by_key(|i| (!i.default, i.retired, -i.not_before));
        mounts.push(MountNode {
            path: d.path.clone(),
            ca: d.ca,
            signed_by: d.signed_by.clone(),
            issuer_name: d.issuer_name.clone(),
            rotate_before: d.rotate_before,
            exists: lm.exists,
            issuers,
            pending_keys,
            placed_under: None,
            unresolved,
        });
    }
    place(&mut mounts);
    let alerts = mounts
        .iter()
        .flat_map(|m| {
            m.issuers
                .iter()
                .filter(|i| i.in_use && matches!(i.health, Health::Rotate | Health::Expired))
                .map(|i| Alert {
                    mount: m.path.clone(),
                    issuer_id: i.id.clone(),
                    issuer_name: i.name.clone(),
                    common_name: i.common_name.clone(),
                    health: i.health,
                    not_after: i.not_after,
                    seconds_left: i.seconds_left,
                    rotate_before: m.rotate_before,
                })
        })
        .collect();
    Status {
        repository: repo.identity.clone(),
        vault: live.address.clone(),
        now,
        mounts,
        alerts,
    }
}

/// Places each mount under the issuer that signed its default issuer (or,
/// failing that, its first issuer), else under the default issuer of the
/// mount it declares as signer; a placement that would make a cycle is
/// dropped (the mount goes to the top).
fn place(mounts: &mut [MountNode]) {
    let mut wanted: Vec<Option<Placement>> = Vec::with_capacity(mounts.len());
    for m in mounts.iter() {
        let main = m.issuers.iter().find(|i| i.default).or(m.issuers.first());
        let by_cert = main.and_then(|i| match &i.parent {
            Parent::Issuer { mount, id, .. } if *mount != m.path => Some(Placement {
                mount: mount.clone(),
                issuer: id.clone(),
            }),
            _ => None,
        });
        let by_declaration = || match &m.signed_by {
            Some(DeclaredSigner::Mount(p)) if *p != m.path => {
                let parent = mounts.iter().find(|o| o.path == *p)?;
                let i = parent
                    .issuers
                    .iter()
                    .find(|i| i.default)
                    .or(parent.issuers.first())?;
                Some(Placement {
                    mount: p.clone(),
                    issuer: i.id.clone(),
                })
            }
            _ => None,
        };
        wanted.push(by_cert.or_else(by_declaration));
    }
    let index: BTreeMap<&str, usize> = mounts
        .iter()
        .enumerate()
        .map(|(i, m)| (m.path.as_str(), i))
        .collect();
    let mut placed: Vec<Option<Placement>> = vec![None; mounts.len()];
    for start in 0..mounts.len() {
        // Follow the chain of parents: a cycle leaves this mount at the top.
        let mut seen = BTreeSet::from([start]);
        let mut at = start;
        let mut cycle = false;
        while let Some(p) = &wanted[at] {
            let Some(&next) = index.get(p.mount.as_str()) else {
                break;
            };
            if !seen.insert(next) {
                cycle = true;
                break;
            }
            at = next;
        }
        if !cycle {
            placed[start] = wanted[start].clone();
        }
    }
    for (m, p) in mounts.iter_mut().zip(placed) {
        m.placed_under = p;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::live::{CertFacts, LiveMount};
    use super::*;
    use crate::state::ObservedKey;

    pub const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    pub fn repo_files(files: &[(&str, &str)]) -> Repository {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let op = crate::operator::Operator::default();
        let p = crate::pipeline::prepare_for(dir.path(), &op).unwrap_or_else(|d| panic!("{d}"));
        let mut repo = p.repo;
        // A stable identity and stable sources for snapshots of the outputs.
        repo.identity = "lab".into();
        for m in &mut repo.manifests {
            let name = m.origin.file.file_name().unwrap().to_owned();
            m.origin.file = std::path::PathBuf::from(name).into();
        }
        repo
    }

    pub const VAULT: &str = r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec:
  maxLeaseTTL: 87600h
  ca:
    root: {commonName: Lab Root CA, issuerName: root-2026, keyType: ec, ttl: 87600h, rotateBefore: 720h}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki_int}
spec:
  maxLeaseTTL: 43800h
  ca:
    intermediate:
      commonName: Lab Intermediate CA
      issuerName: int-2026
      keyType: ec
      ttl: 43800h
      rotateBefore: 720h
      signedBy: {mount: pki}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {name: web}
spec: {mount: pki_int, allowedDomains: [example.com], allowSubdomains: true, ttl: 24h, maxTTL: 720h}
"#;

    pub const CLUSTER: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: sandbox}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: vault-issuer, namespace: sandbox}
spec:
  vault:
    server: https://vault.example.com:8200
    path: pki_int/sign/web
    auth:
      tokenSecretRef: {name: vault-token, key: token}
---
apiVersion: v1
kind: Secret
metadata: {name: vault-token, namespace: sandbox}
stringData: {token: placeholder}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: web, namespace: sandbox}
spec:
  secretName: web-tls
  commonName: www.example.com
  dnsNames: [www.example.com]
  duration: 24h
  issuerRef: {name: vault-issuer}
"#;

    pub fn lab() -> Repository {
        repo_files(&[("vault.yaml", VAULT), ("cluster.yaml", CLUSTER)])
    }

    pub fn issuer(id: &str, name: &str, cn: &str, ski: &str, aki: &str, days: i64) -> LiveIssuer {
        LiveIssuer {
            id: id.into(),
            name: name.into(),
            key_id: format!("key-{id}"),
            usage: vec![
                "crl-signing".into(),
                "issuing-certificates".into(),
                "ocsp-signing".into(),
                "read-only".into(),
            ],
            cert: CertFacts {
                common_name: cn.into(),
                issued_by: String::new(),
                subject: format!("CN={cn}"),
                issuer: String::new(),
                not_before: NOW - DAY,
                not_after: NOW + days * DAY,
                ski: Some(ski.into()),
                aki: Some(aki.into()),
                der: Vec::new(),
            },
        }
    }

    /// The lab's live PKI: a root of 10 years, an intermediate with
    /// `int_days` left.
    pub fn live(int_days: i64) -> LivePki {
        let mut root = issuer("r1", "root-2026", "Lab Root CA", "aa", "aa", 3650);
        root.cert.issued_by = "Lab Root CA".into();
        let mut int = issuer(
            "i1",
            "int-2026",
            "Lab Intermediate CA",
            "bb",
            "aa",
            int_days,
        );
        int.cert.issued_by = "Lab Root CA".into();
        let mut mounts = BTreeMap::new();
        mounts.insert(
            "pki".to_string(),
            LiveMount {
                exists: true,
                default_id: Some("r1".into()),
                issuers: vec![root],
                keys: vec![],
            },
        );
        mounts.insert(
            "pki_int".to_string(),
            LiveMount {
                exists: true,
                default_id: Some("i1".into()),
                issuers: vec![int],
                keys: vec![ObservedKey {
                    id: "key-i1".into(),
                    name: String::new(),
                }],
            },
        );
        LivePki {
            now: NOW,
            address: "https://vault.example.com:8200".into(),
            mounts,
        }
    }

    #[test]
    fn the_intermediate_hangs_under_the_root_issuer_that_signed_it() {
        let s = build(&lab(), &live(1000));
        let top: Vec<&str> = s.top().map(|m| m.path.as_str()).collect();
        assert_eq!(top, ["pki"]);
        let kids: Vec<&str> = s.children("pki", "r1").map(|m| m.path.as_str()).collect();
        assert_eq!(kids, ["pki_int"]);
        let int = &s.mounts[1].issuers[0];
        assert_eq!(
            int.parent,
            Parent::Issuer {
                mount: "pki".into(),
                id: "r1".into(),
                name: "root-2026".into()
            }
        );
        assert_eq!(s.mounts[0].issuers[0].parent, Parent::SelfSigned);
        assert_eq!(int.health, Health::Ok);
        assert!(s.alerts.is_empty());
        // The Issuer signs through the intermediate, the Certificate under it.
        assert_eq!(int.cluster_issuers.len(), 1);
        let ci = &int.cluster_issuers[0];
        assert_eq!(ci.title(), "Issuer sandbox/vault-issuer");
        assert_eq!(ci.role.as_deref(), Some("web"));
        assert_eq!(ci.certificates.len(), 1);
        assert_eq!(ci.certificates[0].name, "web");
        assert_eq!(
            ci.certificates[0].subject.as_deref(),
            Some("www.example.com")
        );
    }

    #[test]
    fn inside_rotate_before_or_expired_is_an_alert() {
        let s = build(&lab(), &live(10));
        assert_eq!(s.mounts[1].issuers[0].health, Health::Rotate);
        assert_eq!(s.alerts.len(), 1);
        assert_eq!(s.alerts[0].mount, "pki_int");
        assert_eq!(s.alerts[0].rotate_before, Some(720 * 3600));
        let s = build(&lab(), &live(-1));
        assert_eq!(s.alerts[0].health, Health::Expired);
        assert!(s.alerts[0].seconds_left < 0);
        // Exactly at the edge: rotateBefore left is not yet inside (as plan).
        let s = build(&lab(), &live(30));
        assert!(s.alerts.is_empty(), "{:?}", s.alerts);
    }

    #[test]
    fn a_retired_or_unused_issuer_raises_no_alert() {
        let mut l = live(1000);
        let int = l.mounts.get_mut("pki_int").unwrap();
        let mut old = issuer("i0", "", "Lab Intermediate CA", "b0", "aa", 5);
        old.usage = vec!["crl-signing".into(), "read-only".into()];
        let mut spare = issuer("i9", "", "Lab Intermediate CA", "b9", "aa", 5);
        spare.key_id = "key-i1".into(); // a cross-signed twin of i1
        int.issuers.push(old);
        int.issuers.push(spare);
        int.keys.push(ObservedKey {
            id: "k-pending".into(),
            name: "certplane-pending-int-2026-ec256".into(),
        });
        int.keys.push(ObservedKey {
            id: "key-i1".into(),
            name: "certplane-pending-int-2026-ec256".into(),
        });
        let s = build(&lab(), &l);
        let m = &s.mounts[1];
        let by_id = |id: &str| m.issuers.iter().find(|i| i.id == id).unwrap();
        assert!(by_id("i0").retired);
        assert_eq!(by_id("i0").health, Health::Retired);
        assert_eq!(by_id("i9").health, Health::Rotate);
        assert!(!by_id("i9").in_use);
        assert_eq!(by_id("i9").twins, ["i1"]);
        assert_eq!(by_id("i1").twins, ["i9"]);
        assert!(s.alerts.is_empty(), "{:?}", s.alerts);
        // The default first.
        assert_eq!(m.issuers[0].id, "i1");
        // Only the pending key without an issuer is pending.
        assert_eq!(
            m.pending_keys,
            vec![PendingKey {
                id: "k-pending".into(),
                name: "certplane-pending-int-2026-ec256".into()
            }]
        );
    }

    #[test]
    fn a_pinned_issuer_is_in_use_and_gets_its_issuers() {
        let cluster = CLUSTER.replace("pki_int/sign/web", "pki_int/issuer/old/sign/web");
        let repo = repo_files(&[("vault.yaml", VAULT), ("cluster.yaml", &cluster)]);
        let mut l = live(1000);
        let int = l.mounts.get_mut("pki_int").unwrap();
        int.issuers
            .push(issuer("i0", "old", "Lab Intermediate CA", "b0", "aa", 3));
        let s = build(&repo, &l);
        let m = &s.mounts[1];
        let old = m.issuers.iter().find(|i| i.id == "i0").unwrap();
        assert!(old.in_use);
        assert_eq!(old.cluster_issuers.len(), 1);
        assert_eq!(old.cluster_issuers[0].issuer_ref.as_deref(), Some("old"));
        assert_eq!(s.alerts.len(), 1);
        assert_eq!(s.alerts[0].issuer_name, "old");
    }

    #[test]
    fn without_live_issuers_the_declared_hierarchy_places_mounts() {
        let mut l = live(1000);
        l.mounts.insert("pki_int".into(), LiveMount::default());
        let s = build(&lab(), &l);
        let m = &s.mounts[1];
        assert!(!m.exists);
        assert_eq!(
            m.placed_under,
            Some(Placement {
                mount: "pki".into(),
                issuer: "r1".into()
            })
        );
        assert_eq!(m.unresolved.len(), 1, "the Issuer waits for a CA");
        // A parent that is gone: the declared signer names it.
        let mut l = live(1000);
        l.mounts.get_mut("pki_int").unwrap().issuers[0].cert.aki = Some("zz".into());
        let s = build(&lab(), &l);
        assert_eq!(
            s.mounts[1].issuers[0].parent,
            Parent::Declared {
                mount: "pki".into(),
                issued_by: "Lab Root CA".into()
            }
        );
    }

    #[test]
    fn a_cycle_of_declared_signers_leaves_mounts_at_the_top() {
        let mut s = build(&lab(), &live(1000));
        s.mounts[0].signed_by = Some(DeclaredSigner::Mount("pki_int".into()));
        s.mounts[0].issuers[0].parent = Parent::Issuer {
            mount: "pki_int".into(),
            id: "i1".into(),
            name: String::new(),
        };
        place(&mut s.mounts);
        let top: Vec<&str> = s.top().map(|m| m.path.as_str()).collect();
        assert_eq!(top, ["pki", "pki_int"], "a cycle is cut, never followed");
    }

    #[test]
    fn pinned_issuer_paths() {
        assert_eq!(pinned_issuer("pki/issuer/a/sign/web").as_deref(), Some("a"));
        assert_eq!(pinned_issuer("pki/sign/web"), None);
        assert_eq!(
            pinned_issuer("team/pki/issuer/x/sign/web").as_deref(),
            Some("x")
        );
    }
}
