//! `PkiMount`: a PKI secrets engine (`sys/mounts/<path>` and its tune), its
//! CA (`<mount>/issuer/<name>`: root, import or intermediate), its
//! `config/urls`, and the keys an interrupted intermediate left
//! (`<mount>/key/<name>`, found, never declared). The CA's settings and the
//! mount's other configs (CRL, cluster, auto-tidy, ACME) are
//! [`super::pki_settings`]'.
//!
//! A CA is never an in-place edit: its identity (common name, key, signer)
//! is compared with the live issuer, and a change is a new issuer beside
//! the old one (see [`crate::plan`] and [`crate::vault::issuer`]).

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Belongs, Delete, Listed, ObjectKind, Read, Resource, ResourceKind, Table, Write};
use crate::addr::{Addr, VaultAddr};
use crate::desired::{put, put_secs, read_file, resource};
use crate::diagnostic::Diagnostic;
use crate::model::{
    CaSpec, Duration, ImportCa, IntermediateCa, ManualSigner, Meta, Origin, PkiMountSpec,
    Repository, RootCa, SignedBy, Source,
};
use crate::pki::x509;
use crate::state::{
    CaIdentity, CaMethod, DesiredCa, DesiredResource, Fields, PENDING_KEY_PREFIX, Signer,
};
use crate::vault::needs::{Needs, WRITE};

/// The `PkiMount` kind.
pub struct PkiMount;

impl ObjectKind for PkiMount {
    type Spec = PkiMountSpec;
    const RESOURCES: &'static [ResourceKind] = &[
        ResourceKind::Mount,
        ResourceKind::Issuer,
        ResourceKind::PkiKey,
        ResourceKind::MountUrls,
        ResourceKind::MountCrl,
        ResourceKind::IssuerSettings,
        ResourceKind::MountCluster,
        ResourceKind::MountAutoTidy,
        ResourceKind::MountAcme,
    ];

    fn lower(
        repo: &Repository,
        meta: &Meta,
        origin: &Origin,
        spec: &PkiMountSpec,
    ) -> Result<Vec<DesiredResource>, Diagnostic> {
        let path = meta.name.as_str();
        let mut f = Fields::new();
        f.insert("type", json!("pki"));
        put(&mut f, "description", spec.description.clone());
        put_secs(&mut f, "default_lease_ttl", spec.default_lease_ttl);
        put_secs(&mut f, "max_lease_ttl", spec.max_lease_ttl);
        super::pki_settings::acme_tuning(spec, &mut f);
        let maddr: Addr = VaultAddr::mount(path).into();
        let mut out = vec![resource(
            maddr.clone(),
            ResourceKind::Mount,
            f,
            vec![],
            origin,
            "metadata.name",
        )];
        if let Some(ca) = &spec.ca {
            out.push(issuer(repo, path, origin, ca)?);
        }
        // `config/urls` keeps what a write leaves out: only the lists
        // written are managed, and nothing at all when none is.
        if let Some(urls) = &spec.urls {
            let mut f = Fields::new();
            put(
                &mut f,
                "issuing_certificates",
                urls.issuing_certificates.clone(),
            );
            put(
                &mut f,
                "crl_distribution_points",
                urls.crl_distribution_points.clone(),
            );
            put(&mut f, "ocsp_servers", urls.ocsp_servers.clone());
            if !f.is_empty() {
                let addr = VaultAddr::Urls {
                    mount: path.to_string(),
                };
                out.push(resource(
                    addr.into(),
                    ResourceKind::MountUrls,
                    f,
                    vec![maddr.clone()],
                    origin,
                    "spec.urls",
                ));
            }
        }
        out.extend(super::pki_settings::lower(repo, path, origin, spec));
        Ok(out)
    }
}

/// Under prune, roles of a PKI mount this repository owns that it no
/// longer declares are found by listing `<mount>/roles`
/// ([`super::pki_role`]); the mount itself is found in `sys/mounts`.
pub const MOUNT: Resource = Resource {
    table: Table::Secrets,
    read: Read::MountEntry,
    write: Write::Mount,
    delete: Delete::Path,
    batch: false,
    apply_order: 40,
    belongs: Belongs::MountOptions,
    listed: None,
    prune_order: 2,
    needs: mount_needs,
};

/// A CA: made, adopted or rotated, never deleted.
pub const ISSUER: Resource = Resource {
    table: Table::Secrets,
    read: Read::Issuers,
    write: Write::Issuer,
    delete: Delete::Never,
    batch: false,
    apply_order: 50,
    belongs: Belongs::Mount,
    listed: None,
    prune_order: 2,
    needs: issuer_needs,
};

/// A key an interrupted intermediate left: its pending name cleared
/// (`key_name: ""`) or deleted. Its capabilities come with its issuer's.
pub const PKI_KEY: Resource = Resource {
    table: Table::Secrets,
    read: Read::Keys,
    write: Write::Data,
    delete: Delete::Path,
    batch: false,
    apply_order: 60,
    belongs: Belongs::Mount,
    listed: None,
    prune_order: 2,
    needs: super::needs_nothing,
};

/// `<mount>/config/urls`: written whole; it goes with its mount.
pub const URLS: Resource = Resource {
    table: Table::Secrets,
    read: Read::Data,
    write: Write::Data,
    delete: Delete::WithMount,
    batch: true,
    apply_order: 70,
    belongs: Belongs::Mount,
    listed: None,
    prune_order: 2,
    needs: super::needs_write,
};

/// Enabling and tuning the mount, and listing what prune looks for in it.
fn mount_needs(_: &DesiredResource, addr: &VaultAddr, n: &mut Needs) {
    let path = addr.path();
    n.add(&path, WRITE);
    super::needs_parent_entry(&path, n);
    n.add(format!("{path}/tune"), &["read", "update"]);
    for (_, Listed { list, .. }) in super::listed_under("pki") {
        n.add(list(addr.mount_path()), &["list"]);
    }
}

/// Reading the mount's issuers, making the CA (root, import or
/// intermediate, resumed with a pending key), naming it and making it the
/// default.
fn issuer_needs(r: &DesiredResource, _: &VaultAddr, n: &mut Needs) {
    let Some(ca) = &r.ca else { return };
    let mount = ca.mount.trim_matches('/');
    n.add(format!("{mount}/issuers"), &["list"]);
    // Naming, retiring (`usage`) and, at the end of a rotation, deleting
    // a superseded issuer.
    n.add(format!("{mount}/issuer/*"), &["read", "patch", "delete"]);
    n.add(format!("{mount}/config/issuers"), &["read", "update"]);
    match &ca.method {
        CaMethod::Root { .. } => {
            n.add(
                format!("{mount}/issuers/generate/root/internal"),
                &["update"],
            );
            // A rotation's new root is marked by its key's pending name.
            n.add(format!("{mount}/keys"), &["list"]);
            n.add(
                format!("{mount}/key/{PENDING_KEY_PREFIX}*"),
                &["update", "delete"],
            );
        }
        CaMethod::Import { .. } => {
            n.add(format!("{mount}/issuers/import/bundle"), &["update"]);
        }
        CaMethod::Intermediate {
            export_key, signer, ..
        } => {
            let kind = if *export_key { "exported" } else { "internal" };
            n.add(
                format!("{mount}/issuers/generate/intermediate/{kind}"),
                &["update"],
            );
            // Resuming an interrupted intermediate: its key (found by
            // name), a new CSR for it, and clearing or deleting keys with
            // certplane's pending name only.
            n.add(format!("{mount}/keys"), &["list"]);
            n.add(
                format!("{mount}/issuers/generate/intermediate/existing"),
                &["update"],
            );
            n.add(
                format!("{mount}/key/{PENDING_KEY_PREFIX}*"),
                &["update", "delete"],
            );
            n.add(format!("{mount}/intermediate/set-signed"), &["update"]);
            if let Signer::Mount {
                mount: parent,
                issuer_ref,
            } = signer
            {
                let parent = parent.trim_matches('/');
                match issuer_ref {
                    Some(i) => n.add(
                        format!("{parent}/issuer/{i}/sign-intermediate"),
                        &["update"],
                    ),
                    None => n.add(format!("{parent}/root/sign-intermediate"), &["update"]),
                }
                if ca.rotation.follow_parent == crate::model::FollowParent::CrossSign {
                    // The cross-sign of a parent's rotation: signed by the
                    // parent's new issuer, named by its id.
                    n.add(format!("{parent}/issuer/+/sign-intermediate"), &["update"]);
                    n.add(format!("{parent}/keys"), &["list"]);
                }
            }
        }
    }
}

/// The issuer name a mount's CA declares, if any.
pub fn ca_issuer_name(ca: &CaSpec) -> Option<&str> {
    match ca {
        CaSpec::Root(r) => r.issuer_name.as_deref(),
        CaSpec::Import(i) => i.issuer_name.as_deref(),
        CaSpec::Intermediate(i) => i.issuer_name.as_deref(),
    }
}

/// The common name a mount's CA will have, when known without reading a
/// secret (root and intermediate).
pub fn ca_common_name(ca: &CaSpec) -> Option<&str> {
    match ca {
        CaSpec::Root(r) => Some(&r.common_name),
        CaSpec::Intermediate(i) => Some(&i.common_name),
        CaSpec::Import(_) => None,
    }
}

/// A CA as lowered, before it becomes the issuer resource.
struct Lowered {
    identity: CaIdentity,
    method: CaMethod,
    ttl: Option<Duration>,
    rotate_before: Option<Duration>,
    rotation: Option<crate::model::RotationSpec>,
    /// Where it is written (for positions).
    at: &'static str,
}

/// The issuer resource of a mount's CA: its identity, how it is made, and
/// the fields a plan shows.
fn issuer(
    repo: &Repository,
    mount: &str,
    origin: &Origin,
    ca: &CaSpec,
) -> Result<DesiredResource, Diagnostic> {
    let issuer_name = ca_issuer_name(ca).map(str::to_string);
    let mut depends_on = vec![VaultAddr::mount(mount).into()];
    let lowered = match ca {
        CaSpec::Root(r) => root(r),
        CaSpec::Intermediate(i) => intermediate(repo, origin, i, &mut depends_on)?,
        CaSpec::Import(imp) => import(origin, imp)?,
    };
    let Lowered {
        identity,
        method,
        ttl,
        rotate_before,
        rotation,
        at,
    } = lowered;
    let mut shown = Fields::new();
    put(&mut shown, "issuer_name", issuer_name.clone());
    shown.insert("common_name", json!(identity.common_name));
    put(
        &mut shown,
        "key_type",
        identity.key_type.map(|k| k.as_str()),
    );
    put(&mut shown, "key_bits", identity.key_bits);
    put(&mut shown, "issued_by", identity.issued_by.clone());
    put_secs(&mut shown, "ttl", ttl);
    put(
        &mut shown,
        "certificate_sha256",
        identity.cert_sha256.clone(),
    );
    let mut r = resource(
        VaultAddr::issuer(mount, issuer_name.as_deref()).into(),
        ResourceKind::Issuer,
        shown,
        depends_on,
        origin,
        at,
    );
    r.ca = Some(Box::new(DesiredCa {
        mount: mount.to_string(),
        issuer_name,
        identity,
        method,
        ttl: ttl.map(Duration::as_secs),
        rotate_before: rotate_before.map(Duration::as_secs),
        rotation: crate::state::RotationSettings {
            overlap: rotation
                .as_ref()
                .and_then(|r| r.overlap)
                .map(Duration::as_secs),
            safety_buffer: rotation
                .as_ref()
                .and_then(|r| r.safety_buffer)
                .map(Duration::as_secs),
            follow_parent: rotation
                .as_ref()
                .and_then(|r| r.follow_parent)
                .unwrap_or_default(),
            manual_chain_declared: super::pki_settings::ca_settings(ca)
                .is_some_and(|(s, _)| s.manual_chain.is_some()),
        },
    }));
    Ok(r)
}

/// The parameters of a generate call: common name, key type and size.
fn generate_params(common_name: &str, key_type: crate::model::KeyType, bits: u32) -> Fields {
    let mut params = Fields::new();
    params.insert("common_name", json!(common_name));
    params.insert("key_type", json!(key_type.as_str()));
    if bits != 0 {
        params.insert("key_bits", json!(bits));
    }
    params
}

fn root(r: &RootCa) -> Lowered {
    let bits = r.key_bits.unwrap_or(r.key_type.default_bits());
    let mut params = generate_params(&r.common_name, r.key_type, bits);
    put_secs(&mut params, "ttl", r.ttl);
    put(&mut params, "max_path_length", r.max_path_length);
    params.extend(r.extra.clone());
    Lowered {
        identity: CaIdentity {
            common_name: r.common_name.clone(),
            key_type: Some(r.key_type),
            key_bits: Some(bits),
            issued_by: Some(r.common_name.clone()),
            cert_sha256: None,
        },
        method: CaMethod::Root { params },
        ttl: r.ttl,
        rotate_before: r.rotate_before,
        rotation: r.rotation.clone(),
        at: "spec.ca.root",
    }
}

fn intermediate(
    repo: &Repository,
    origin: &Origin,
    i: &IntermediateCa,
    depends_on: &mut Vec<Addr>,
) -> Result<Lowered, Diagnostic> {
    let bits = i.key_bits.unwrap_or(i.key_type.default_bits());
    let mut params = generate_params(&i.common_name, i.key_type, bits);
    params.extend(i.extra.clone());
    let mut sign_params = Fields::new();
    sign_params.insert("common_name", json!(i.common_name));
    put_secs(&mut sign_params, "ttl", i.ttl);
    put(&mut sign_params, "max_path_length", i.max_path_length);
    let (signer, issued_by) = match &i.signed_by {
        SignedBy::Mount(parent) => signed_by_mount(repo, parent, depends_on),
        SignedBy::External(ext) => {
            let at = "spec.ca.intermediate.signedBy.external.caCertFile";
            let pem = read_file(&ext.ca_cert_file, origin, at)?;
            let info = x509::parse_pem(&pem).map_err(|e| {
                Diagnostic::new(
                    origin.at(at),
                    format!("{}: {e}", ext.ca_cert_file.display()),
                )
                .hint("caCertFile must hold the signing CA's certificate in PEM")
            })?;
            let signer = Signer::External {
                ca_cert_pem: pem,
                ca_key: ext.ca_key_from.clone(),
            };
            (signer, Some(info.common_name))
        }
        SignedBy::Manual(m) => signed_by_hand(origin, m)?,
    };
    Ok(Lowered {
        identity: CaIdentity {
            common_name: i.common_name.clone(),
            key_type: Some(i.key_type),
            key_bits: Some(bits),
            issued_by,
            cert_sha256: None,
        },
        method: CaMethod::Intermediate {
            params,
            sign_params,
            export_key: i.export_key,
            signer,
        },
        ttl: i.ttl,
        rotate_before: i.rotate_before,
        rotation: i.rotation.clone(),
        at: "spec.ca.intermediate",
    })
}

/// An intermediate signed by another mount of the repository: it depends
/// on the parent's CA, whose common name is the intermediate's issuer.
fn signed_by_mount(
    repo: &Repository,
    parent: &str,
    depends_on: &mut Vec<Addr>,
) -> (Signer, Option<String>) {
    let parent_ca = repo.pki_mount(parent).and_then(|(_, _, s)| s.ca.as_ref());
    let issuer_ref = parent_ca.and_then(ca_issuer_name).map(str::to_string);
    depends_on.push(VaultAddr::issuer(parent, issuer_ref.as_deref()).into());
    let issued_by = match parent_ca {
        Some(CaSpec::Import(imp)) => imported_cert(&imp.pem_bundle_from)
            .ok()
            .map(|c| c.common_name),
        Some(other) => ca_common_name(other).map(str::to_string),
        None => None,
    };
    let signer = Signer::Mount {
        mount: parent.to_string(),
        issuer_ref,
    };
    (signer, issued_by)
}

/// An intermediate signed by hand: its certificate (once committed) and
/// the CSR an earlier apply wrote next to it.
fn signed_by_hand(
    origin: &Origin,
    m: &ManualSigner,
) -> Result<(Signer, Option<String>), Diagnostic> {
    let at = "spec.ca.intermediate.signedBy.manual.certificateFile";
    let certificate_pem = read_optional(&m.certificate_file, origin, at)?;
    let mut csr_file = m.certificate_file.clone().into_os_string();
    csr_file.push(".csr");
    let csr_file = PathBuf::from(csr_file);
    let csr_pem = read_optional(&csr_file, origin, at)?;
    let issued_by = match &certificate_pem {
        Some(pem) => Some(
            x509::parse_pem(pem)
                .map_err(|e| {
                    Diagnostic::new(
                        origin.at(at),
                        format!("{}: {e}", m.certificate_file.display()),
                    )
                    .hint("commit the signed intermediate certificate in PEM")
                })?
                .issued_by,
        ),
        None => None,
    };
    let signer = Signer::Manual {
        certificate_file: m.certificate_file.clone(),
        certificate_pem,
        csr_file,
        csr_pem,
    };
    Ok((signer, issued_by))
}

fn import(origin: &Origin, imp: &ImportCa) -> Result<Lowered, Diagnostic> {
    let info = imported_cert(&imp.pem_bundle_from).map_err(|e| {
        Diagnostic::new(origin.at("spec.ca.import.pemBundleFrom"), e.to_string())
            .hint("pemBundleFrom must give a PEM bundle with the CA certificate and its key")
    })?;
    Ok(Lowered {
        identity: CaIdentity {
            common_name: info.common_name.clone(),
            key_type: info.key_type,
            key_bits: Some(info.key_bits),
            issued_by: Some(info.issued_by.clone()),
            cert_sha256: Some(info.sha256.clone()),
        },
        method: CaMethod::Import {
            bundle: imp.pem_bundle_from.clone(),
        },
        ttl: None,
        rotate_before: None,
        rotation: None,
        at: "spec.ca.import",
    })
}

/// Why the certificate of a CA bundle could not be read.
#[derive(Debug, thiserror::Error)]
enum BundleError {
    /// The source could not be read.
    #[error("cannot read the CA bundle ({what}): {source}")]
    Read {
        /// The source, described (never its value).
        what: String,
        /// Why.
        source: crate::model::source::SourceError,
    },
    /// It holds no usable certificate.
    #[error("the CA bundle ({what}) has no usable certificate: {source}")]
    Certificate {
        /// The source, described.
        what: String,
        /// Why.
        source: x509::CertError,
    },
}

/// Reads the certificate of an import bundle. The bundle's key is dropped
/// with the text; only certificate facts leave this function.
fn imported_cert(source: &Source) -> Result<x509::CertInfo, BundleError> {
    let what = source.describe();
    let text = source.read().map_err(|source| BundleError::Read {
        what: what.clone(),
        source,
    })?;
    x509::parse_pem(text.expose()).map_err(|source| BundleError::Certificate { what, source })
}

fn read_optional(path: &Path, origin: &Origin, at: &str) -> Result<Option<String>, Diagnostic> {
    if path.exists() {
        read_file(path, origin, at).map(Some)
    } else {
        Ok(None)
    }
}
