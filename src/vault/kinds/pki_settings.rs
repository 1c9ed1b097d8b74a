//! The settings of a `PkiMount` beside its CA: the issuer's own parameters
//! (`settings` of the CA: usage, leaf lifetime behaviour, manual chain,
//! per-issuer AIA URLs, patched at `<mount>/issuer/<ref>`), `config/crl`,
//! `config/cluster`, `config/auto-tidy` and `config/acme` (with the mount
//! tuning ACME needs, on the mount itself).
//!
//! Each is a resource of its own, with only the fields the repository
//! writes: a field not written is Vault's, never a change. The configs are
//! written with `POST` (Vault keeps what a write does not name); the
//! issuer's settings with `PATCH` (a `POST` would reset what it does not
//! name, the issuer's name included).

use serde_json::json;

use super::{Belongs, Delete, Read, Resource, Table, Write};
use crate::addr::{Addr, VaultAddr};
use crate::desired::{put, put_secs, resource};
use crate::model::{CaSpec, IssuerSettings, Origin, PkiMountSpec, Repository};
use crate::state::{DesiredResource, Fields, ResourceKind};
use crate::vault::needs::Needs;

/// The request headers ACME needs passed through to the mount
/// (`passthrough_request_headers`).
pub const ACME_REQUEST_HEADERS: &[&str] = &["If-Modified-Since"];

/// The response headers ACME needs the mount to send
/// (`allowed_response_headers`).
pub const ACME_RESPONSE_HEADERS: &[&str] = &["Last-Modified", "Location", "Replay-Nonce", "Link"];

/// Whether the mount serves ACME: `acme.enabled: true`.
pub fn acme_enabled(spec: &PkiMountSpec) -> bool {
    spec.acme.as_ref().and_then(|a| a.enabled) == Some(true)
}

/// The mount tuning ACME needs, added to the mount's fields when ACME is
/// enabled.
pub fn acme_tuning(spec: &PkiMountSpec, mount_fields: &mut Fields) {
    if acme_enabled(spec) {
        mount_fields.insert("passthrough_request_headers", json!(ACME_REQUEST_HEADERS));
        mount_fields.insert("allowed_response_headers", json!(ACME_RESPONSE_HEADERS));
    }
}

/// The settings declared on a mount's CA.
pub fn ca_settings(ca: &CaSpec) -> Option<(&IssuerSettings, &'static str)> {
    match ca {
        CaSpec::Root(r) => r.settings.as_deref().map(|s| (s, "spec.ca.root.settings")),
        CaSpec::Import(i) => i
            .settings
            .as_deref()
            .map(|s| (s, "spec.ca.import.settings")),
        CaSpec::Intermediate(i) => i
            .settings
            .as_deref()
            .map(|s| (s, "spec.ca.intermediate.settings")),
    }
}

/// The resources of a mount's settings: its CA's settings, `config/crl`,
/// `config/cluster`, `config/auto-tidy`, `config/acme`.
pub fn lower(
    repo: &Repository,
    mount: &str,
    origin: &Origin,
    spec: &PkiMountSpec,
) -> Vec<DesiredResource> {
    let maddr: Addr = VaultAddr::mount(mount).into();
    let cluster_addr: Addr = VaultAddr::pki_config(mount, "cluster").into();
    let issuer_name = spec.ca.as_ref().and_then(super::ca_issuer_name);
    let issuer_addr: Addr = VaultAddr::issuer(mount, issuer_name).into();
    let mut out = Vec::new();
    if let Some(ca) = &spec.ca
        && let Some((s, at)) = ca_settings(ca)
    {
        let mut f = Fields::new();
        put(
            &mut f,
            "usage",
            s.usage.as_ref().map(|u| {
                let mut v: Vec<&str> = u.iter().map(|x| x.as_str()).collect();
                v.sort_unstable();
                v.dedup();
                v
            }),
        );
        put(
            &mut f,
            "leaf_not_after_behavior",
            s.leaf_not_after_behavior.map(|b| b.as_str()),
        );
        put(&mut f, "manual_chain", s.manual_chain.clone());
        put(
            &mut f,
            "issuing_certificates",
            s.issuing_certificates.clone(),
        );
        put(
            &mut f,
            "crl_distribution_points",
            s.crl_distribution_points.clone(),
        );
        put(&mut f, "ocsp_servers", s.ocsp_servers.clone());
        put(
            &mut f,
            "enable_aia_url_templating",
            s.enable_aia_url_templating,
        );
        let mut deps = vec![maddr.clone(), issuer_addr.clone()];
        if spec.cluster.is_some() {
            deps.push(cluster_addr.clone());
        }
        out.push(resource(
            VaultAddr::issuer_settings(mount, issuer_name).into(),
            ResourceKind::IssuerSettings,
            f,
            deps,
            origin,
            at,
        ));
    }
    if let Some(crl) = &spec.crl {
        let mut f = Fields::new();
        put_secs(&mut f, "expiry", crl.expiry);
        put(&mut f, "disable", crl.disable);
        put(&mut f, "ocsp_disable", crl.ocsp_disable);
        put_secs(&mut f, "ocsp_expiry", crl.ocsp_expiry);
        put(&mut f, "auto_rebuild", crl.auto_rebuild);
        put_secs(
            &mut f,
            "auto_rebuild_grace_period",
            crl.auto_rebuild_grace_period,
        );
        put(&mut f, "enable_delta", crl.enable_delta);
        put_secs(&mut f, "delta_rebuild_interval", crl.delta_rebuild_interval);
        let addr = VaultAddr::Crl {
            mount: mount.to_string(),
        };
        out.push(resource(
            addr.into(),
            ResourceKind::MountCrl,
            f,
            vec![maddr.clone()],
            origin,
            "spec.crl",
        ));
    }
    if let Some(c) = &spec.cluster {
        let mut f = Fields::new();
        put(&mut f, "path", c.path.clone());
        put(&mut f, "aia_path", c.aia_path.clone());
        out.push(resource(
            cluster_addr.clone(),
            ResourceKind::MountCluster,
            f,
            vec![maddr.clone()],
            origin,
            "spec.cluster",
        ));
    }
    if let Some(t) = &spec.auto_tidy {
        let mut f = Fields::new();
        put(&mut f, "enabled", t.enabled);
        put_secs(&mut f, "interval_duration", t.interval_duration);
        put(&mut f, "tidy_cert_store", t.tidy_cert_store);
        put(&mut f, "tidy_revoked_certs", t.tidy_revoked_certs);
        put(
            &mut f,
            "tidy_revoked_cert_issuer_associations",
            t.tidy_revoked_cert_issuer_associations,
        );
        put(&mut f, "tidy_expired_issuers", t.tidy_expired_issuers);
        put(
            &mut f,
            "tidy_move_legacy_ca_bundle",
            t.tidy_move_legacy_ca_bundle,
        );
        put(&mut f, "tidy_acme", t.tidy_acme);
        put_secs(&mut f, "safety_buffer", t.safety_buffer);
        put_secs(&mut f, "issuer_safety_buffer", t.issuer_safety_buffer);
        put_secs(
            &mut f,
            "acme_account_safety_buffer",
            t.acme_account_safety_buffer,
        );
        put_secs(&mut f, "pause_duration", t.pause_duration);
        out.push(resource(
            VaultAddr::pki_config(mount, "auto-tidy").into(),
            ResourceKind::MountAutoTidy,
            f,
            vec![maddr.clone()],
            origin,
            "spec.autoTidy",
        ));
    }
    if let Some(a) = &spec.acme {
        let mut f = Fields::new();
        put(&mut f, "enabled", a.enabled);
        put(&mut f, "allowed_issuers", a.allowed_issuers.clone());
        put(&mut f, "allowed_roles", a.allowed_roles.clone());
        put(
            &mut f,
            "default_directory_policy",
            a.default_directory_policy.clone(),
        );
        put(&mut f, "eab_policy", a.eab_policy.clone());
        put(&mut f, "dns_resolver", a.dns_resolver.clone());
        put(
            &mut f,
            "allow_role_ext_key_usage",
            a.allow_role_ext_key_usage,
        );
        // ACME needs the mount's URL, its CA, and the roles it names.
        let mut deps = vec![maddr.clone()];
        if spec.cluster.is_some() {
            deps.push(cluster_addr.clone());
        }
        if spec.ca.is_some() {
            deps.push(issuer_addr.clone());
        }
        deps.extend(
            repo.pki_roles()
                .filter(|(_, _, r)| r.mount.trim_matches('/') == mount)
                .map(|(m, _, _)| Addr::from(VaultAddr::role(mount, &m.name))),
        );
        out.push(resource(
            VaultAddr::pki_config(mount, "acme").into(),
            ResourceKind::MountAcme,
            f,
            deps,
            origin,
            "spec.acme",
        ));
    }
    out
}

/// `<mount>/config/crl`: written with the fields declared; it goes with
/// its mount.
pub const CRL: Resource = Resource {
    table: Table::Secrets,
    read: Read::Data,
    write: Write::Data,
    delete: Delete::WithMount,
    batch: true,
    apply_order: 80,
    belongs: Belongs::Mount,
    listed: None,
    prune_order: 2,
    needs: super::needs_write,
};

/// `<mount>/config/cluster`: before the CA's settings and ACME, which use
/// it.
pub const CLUSTER: Resource = Resource {
    apply_order: 45,
    ..CRL
};

/// `<mount>/config/auto-tidy`.
pub const AUTO_TIDY: Resource = Resource {
    apply_order: 82,
    ..CRL
};

/// `<mount>/config/acme`: after the roles and issuers it may name.
pub const ACME: Resource = Resource {
    apply_order: 95,
    ..CRL
};

/// A CA's settings: read from its issuer, patched there; they go with the
/// CA (never deleted on their own).
pub const ISSUER_SETTINGS: Resource = Resource {
    table: Table::Secrets,
    read: Read::IssuerSettings,
    write: Write::Patch,
    delete: Delete::WithMount,
    batch: false,
    apply_order: 55,
    belongs: Belongs::Mount,
    listed: None,
    prune_order: 2,
    needs: issuer_settings_needs,
};

/// Reading the issuer (found by name in the mount's issuer list, or as the
/// default) and patching it.
fn issuer_settings_needs(_: &DesiredResource, addr: &VaultAddr, n: &mut Needs) {
    let mount = addr.mount_path();
    n.add(format!("{mount}/issuers"), &["list"]);
    n.add(format!("{mount}/config/issuers"), &["read"]);
    n.add(format!("{mount}/issuer/*"), &["read", "patch"]);
}
