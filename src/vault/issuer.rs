//! Making, adopting and rotating the CA (issuer) of a PKI mount.
//!
//! A CA is made once: root (`issuers/generate/root/internal`), intermediate
//! (`issuers/generate/intermediate/*`, signed by a parent mount, in-process,
//! or by hand, then `intermediate/set-signed`) or import
//! (`issuers/import/bundle`). A new issuer is then named and made the mount's
//! default.
//!
//! A rotation is staged (README, "Rotating a CA"; the planner decides each
//! stage from the live issuers, [`crate::plan::Rotation`]): stage 1 makes the
//! new issuer beside the old one, unnamed, not the default, its key keeping
//! the pending name; stage 2 renames the old issuer `<name>-<id start>`,
//! names the new one, makes it the default, retires the old one
//! (`usage: read-only,crl-signing`) and clears the key's name; stage 3
//! deletes the retired issuer once its notAfter plus the safety buffer
//! passed (re-checked here with this machine's clock).
//!
//! An intermediate takes several calls, and an apply can stop between any
//! two (crash, timeout, a token without `set-signed`). So its key is
//! generated under a deterministic name ([`DesiredCa::pending_key_name`]),
//! kept until the new issuer is named and made the default, then cleared:
//! the next plan finds a key with that name and no issuer, and the apply
//! resumes with it (`generate/intermediate/existing`), never generating
//! another. A certificate the parent mount signed is recorded in the lock's
//! KV mount until `set-signed` took it, so a resumed apply imports it
//! instead of asking the parent to sign again; only an interruption of the
//! parent's sign call itself (before the record is written) costs one more
//! signature.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::apply::{ApplyError, ExportedKey, Outcome, Waiting, parent_created};
use super::observe::{observe_issuers, observe_keys};
use super::{Vault, VaultError};
use crate::addr::Addr;
use crate::model::Sensitive;
use crate::pki::sign::{certificate_blocks, sign_intermediate_csr};
use crate::pki::x509;
use crate::plan::Rotation;
use crate::plan::{Action, CaChange, Change};
use crate::state::{
    CaMethod, DesiredCa, ObservedIssuer, PENDING_KEY_PREFIX, RETIRED_USAGE, Signer,
};

/// Applies an issuer change. `state_mount`: where a signed intermediate is
/// recorded until imported (the lock's KV mount).
pub(crate) async fn apply_issuer(
    vault: &Vault,
    change: &Change,
    created: &BTreeSet<Addr>,
    state_mount: Option<&str>,
) -> Result<Outcome, ApplyError> {
    let addr = &change.addr;
    let Some(ca) = &change.ca else {
        return Err(ApplyError::Unsupported {
            addr: addr.clone(),
            why: "the plan has no CA details for this issuer; run plan again".into(),
        });
    };
    let mount = ca.desired.mount.trim_matches('/');
    let issuers = observe_issuers(vault, mount)
        .await
        .map_err(ApplyError::vault(addr))?;
    match &ca.rotation {
        Some(Rotation::Retire { id }) => {
            return retire_superseded(vault, addr, mount, &issuers, id).await;
        }
        Some(Rotation::Delete { id, after }) => {
            return delete_retired(vault, addr, mount, &issuers, id, *after).await;
        }
        Some(Rotation::CrossSign { old, parent }) => {
            return cross_sign(vault, addr, ca, &issuers, old, parent.as_deref()).await;
        }
        _ => {}
    }
    recheck(change, ca, &issuers, created)?;
    let existing = ca
        .existing_id
        .as_ref()
        .and_then(|id| issuers.iter().find(|i| &i.id == id));
    let pending = match &ca.pending_key {
        Some(name) => Some(recheck_pending(vault, change, name, &issuers, existing).await?),
        None => None,
    };
    let state = state_mount.map(|m| Record {
        state_mount: m,
        mount,
        key_name: ca.desired.pending_key_name().unwrap_or_default(),
    });
    match change.action {
        Action::Create => create(vault, addr, ca, pending.as_deref(), state.as_ref()).await,
        Action::Update => {
            let Some(current) = existing else {
                return Err(ApplyError::Stale { addr: addr.clone() });
            };
            let switch = match &ca.rotation {
                Some(Rotation::Switch { old, retire }) => {
                    let Some(old) = issuers.iter().find(|i| &i.id == old) else {
                        return Err(ApplyError::Stale { addr: addr.clone() });
                    };
                    Some((old, *retire))
                }
                _ => None,
            };
            if let Some(name) = &ca.desired.issuer_name
                && current.name != *name
            {
                // Only an interrupted apply leaves the name on another issuer.
                if let Some(holder) = issuers.iter().find(|i| &i.name == name) {
                    let short: String = holder.id.chars().take(8).collect();
                    set_name(vault, addr, mount, &holder.id, &format!("{name}-{short}")).await?;
                }
                set_name(vault, addr, mount, &current.id, name).await?;
            }
            if let Some((old, _)) = switch {
                // The superseded issuer keeps a name the next plans find it
                // by (it had the declared name, renamed above, or none).
                let base = ca
                    .desired
                    .issuer_name
                    .as_deref()
                    .unwrap_or("certplane-superseded");
                if ca.desired.issuer_name.is_none() || old.name.is_empty() {
                    set_name(vault, addr, mount, &old.id, &old.superseded_name(base)).await?;
                }
            }
            if !current.is_default {
                set_default(vault, addr, mount, &current.id).await?;
            }
            if let Some((old, true)) = switch {
                set_usage(vault, addr, mount, &old.id, RETIRED_USAGE).await?;
            }
            if let Some(key) = &ca.pending_key {
                clear_key_name(vault, addr, mount, key).await?;
                if let Some(r) = &state {
                    r.forget(vault).await;
                }
            }
            Ok(Outcome::Done(Some(current.id.clone()), None))
        }
        Action::Replace => {
            if existing.is_none() {
                return Err(ApplyError::Stale { addr: addr.clone() });
            }
            // Stage 1 of a rotation: the new issuer is made beside the old
            // one, which stays named and the default until stage 2.
            make_beside(vault, addr, ca, pending.as_deref(), state.as_ref()).await
        }
        Action::Delete | Action::NoOp => Err(ApplyError::Unsupported {
            addr: addr.clone(),
            why: "certplane deletes an issuer only at the end of a rotation (retired, and expired \
                  for longer than the safety buffer); delete it by hand (bao delete \
                  <mount>/issuer/<id>)"
                .into(),
        }),
    }
}

/// Checks the mount's issuers are still as the plan saw them.
// See `body_with_secrets`: a large error, built once on the way out.
#[allow(clippy::result_large_err)]
fn recheck(
    change: &Change,
    ca: &CaChange,
    issuers: &[ObservedIssuer],
    created: &BTreeSet<Addr>,
) -> Result<(), ApplyError> {
    let stale = || ApplyError::Stale {
        addr: change.addr.clone(),
    };
    match change.action {
        Action::Create => {
            let present = match &ca.desired.issuer_name {
                Some(name) => issuers.iter().any(|i| &i.name == name),
                None => issuers.iter().any(|i| i.is_default),
            };
            if present && !parent_created(change, created) {
                return Err(stale());
            }
            Ok(())
        }
        Action::Update | Action::Replace => {
            let id = ca.existing_id.as_ref().ok_or_else(stale)?;
            if issuers.iter().any(|i| &i.id == id) {
                Ok(())
            } else {
                Err(stale())
            }
        }
        Action::Delete | Action::NoOp => Ok(()),
    }
}

/// Checks that the pending key the plan saw is still there: unused for a
/// Create or Replace (which resumes with it), used by the issuer being
/// finished for an Update. Returns its id.
async fn recheck_pending(
    vault: &Vault,
    change: &Change,
    name: &str,
    issuers: &[ObservedIssuer],
    existing: Option<&ObservedIssuer>,
) -> Result<String, ApplyError> {
    let addr = &change.addr;
    let mount = change
        .ca
        .as_ref()
        .map(|c| c.desired.mount.trim_matches('/'))
        .unwrap_or_default();
    let keys = observe_keys(vault, mount)
        .await
        .map_err(ApplyError::vault(addr))?;
    let stale = || ApplyError::Stale { addr: addr.clone() };
    let key = keys
        .into_iter()
        .find(|k| k.name == name)
        .ok_or_else(stale)?;
    let used = issuers.iter().any(|i| i.key_id == key.id);
    let fine = match change.action {
        Action::Create | Action::Replace => !used,
        Action::Update => existing.is_some_and(|i| i.key_id == key.id),
        Action::Delete | Action::NoOp => false,
    };
    if fine { Ok(key.id) } else { Err(stale()) }
}

/// Where an intermediate's signed certificate waits for `set-signed`:
/// `<state_mount>/data/pending/<mount>/<key name>` (KV version 2). The
/// certificate is public; the record only spares the parent a second
/// signature when an apply stops before importing it.
struct Record<'a> {
    state_mount: &'a str,
    mount: &'a str,
    key_name: String,
}

/// What a [`Record`] holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct SignedRecord {
    /// The key the CSR was made with.
    key_id: String,
    /// The parent mount that signed it.
    signed_by: String,
    /// The certificate and its chain (PEM).
    certificate: String,
}

impl Record<'_> {
    fn path(&self, kind: &str) -> String {
        format!(
            "{}/{kind}/pending/{}/{}",
            self.state_mount, self.mount, self.key_name
        )
    }

    /// The recorded certificate for `key_id`, signed by `parent` with the
    /// declared common name and still valid for a day; `None` otherwise or
    /// when it cannot be read (the parent then signs again).
    async fn recall(
        &self,
        vault: &Vault,
        key_id: &str,
        parent: &str,
        desired: &DesiredCa,
    ) -> Option<String> {
        let data = match vault.read(&self.path("data")).await {
            Ok(d) => d?,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the record of a signed intermediate; the parent signs again");
                return None;
            }
        };
        let rec: SignedRecord = serde_json::from_value(data.get("data")?.clone()).ok()?;
        let info = x509::parse_pem(&rec.certificate).ok()?;
        let usable = rec.key_id == key_id
            && rec.signed_by == parent
            && info.common_name == desired.identity.common_name
            && desired
                .identity
                .issued_by
                .as_ref()
                .is_none_or(|by| *by == info.issued_by)
            && info.not_after > super::observe::unix_now() + 86_400;
        usable.then_some(rec.certificate)
    }

    /// Records a signed certificate (best effort: a failure costs one more
    /// signature on resume, never the apply).
    async fn remember(&self, vault: &Vault, key_id: &str, parent: &str, pem: &str) {
        let rec = SignedRecord {
            key_id: key_id.to_string(),
            signed_by: parent.to_string(),
            certificate: pem.to_string(),
        };
        if let Err(e) = vault.write(&self.path("data"), &json!({"data": rec})).await {
            tracing::warn!(error = %e, "cannot record the signed intermediate; an interrupted apply would have it signed again");
        }
    }

    /// Removes the record once the certificate is imported (best effort).
    async fn forget(&self, vault: &Vault) {
        if let Err(e) = vault.delete(&self.path("metadata")).await {
            tracing::warn!(error = %e, "cannot remove the record of the imported intermediate");
        }
    }
}

/// Makes the CA, names it and makes it the default. `pending`: the id of
/// the key an interrupted apply generated (named in `ca.pending_key`), to
/// resume with.
async fn create(
    vault: &Vault,
    addr: &Addr,
    ca: &CaChange,
    pending: Option<&str>,
    record: Option<&Record<'_>>,
) -> Result<Outcome, ApplyError> {
    let desired = &ca.desired;
    let mount = desired.mount.trim_matches('/');
    let (id, exported) = match &desired.method {
        CaMethod::Root { params } => (generate_root(vault, addr, desired, params).await?, None),
        CaMethod::Intermediate { .. } => {
            match make_intermediate(vault, addr, ca, pending, record).await? {
                Made::Issuer(id, exported) => (id, exported),
                Made::Waiting(w) => return Ok(Outcome::Waiting(w)),
            }
        }
        CaMethod::Import { bundle } => (import_bundle(vault, addr, mount, bundle).await?, None),
    };
    finish(vault, addr, desired, id, record, exported).await
}

/// Stage 1 of a rotation: makes the new CA beside the current one, unnamed
/// and not the default; its key keeps certplane's pending name, which is
/// how the next plan finds it (stage 2 names it, makes it the default and
/// clears the key's name).
async fn make_beside(
    vault: &Vault,
    addr: &Addr,
    ca: &CaChange,
    pending: Option<&str>,
    record: Option<&Record<'_>>,
) -> Result<Outcome, ApplyError> {
    let desired = &ca.desired;
    let mount = desired.mount.trim_matches('/');
    let (id, exported) = match &desired.method {
        CaMethod::Root { params } => {
            let mut body: Map<String, Value> = params.clone().into_iter().collect();
            if let Some(key) = desired.pending_key_name() {
                body.insert("key_name".into(), json!(key));
            }
            let path = format!("{mount}/issuers/generate/root/internal");
            (
                write_for(vault, addr, &path, body, "issuer_id").await?,
                None,
            )
        }
        CaMethod::Intermediate { .. } => {
            match make_intermediate(vault, addr, ca, pending, record).await? {
                Made::Issuer(id, exported) => (id, exported),
                Made::Waiting(w) => return Ok(Outcome::Waiting(w)),
            }
        }
        CaMethod::Import { bundle } => {
            // An import has no pending key to mark it: it is finished at
            // once, as before rotations were staged.
            let id = import_bundle(vault, addr, mount, bundle).await?;
            if let Some(name) = &desired.issuer_name {
                let issuers = observe_issuers(vault, mount)
                    .await
                    .map_err(ApplyError::vault(addr))?;
                if let Some(holder) = issuers.iter().find(|i| &i.name == name && i.id != id) {
                    set_name(
                        vault,
                        addr,
                        mount,
                        &holder.id,
                        &holder.superseded_name(name),
                    )
                    .await?;
                }
            }
            return finish(vault, addr, desired, id, record, None).await;
        }
    };
    if let Some(r) = record {
        r.forget(vault).await;
    }
    Ok(Outcome::Done(Some(id), exported))
}

/// Retires a superseded issuer (stage 2, once no child chains to it):
/// re-checked first (still there, not the default).
async fn retire_superseded(
    vault: &Vault,
    addr: &Addr,
    mount: &str,
    issuers: &[ObservedIssuer],
    id: &str,
) -> Result<Outcome, ApplyError> {
    let Some(i) = issuers.iter().find(|i| i.id == id) else {
        return Err(ApplyError::Stale { addr: addr.clone() });
    };
    if i.is_default {
        return Err(ApplyError::Stale { addr: addr.clone() });
    }
    set_usage(vault, addr, mount, id, RETIRED_USAGE).await?;
    Ok(Outcome::Done(Some(id.to_string()), None))
}

/// Deletes a retired issuer (stage 3), re-checked first: still retired,
/// not the default, and its notAfter plus the safety buffer passed by this
/// machine's clock too. An issuer that is gone already is done.
async fn delete_retired(
    vault: &Vault,
    addr: &Addr,
    mount: &str,
    issuers: &[ObservedIssuer],
    id: &str,
    after: i64,
) -> Result<Outcome, ApplyError> {
    let Some(i) = issuers.iter().find(|i| i.id == id) else {
        return Ok(Outcome::Done(None, None));
    };
    if i.is_default || !i.is_retired() || super::observe::unix_now() < after {
        return Err(ApplyError::Stale { addr: addr.clone() });
    }
    vault
        .delete(&format!("{mount}/issuer/{id}"))
        .await
        .map_err(ApplyError::vault(addr))?;
    // A cross-signed twin lists it in its manual_chain: Vault builds the
    // chain again without it.
    for twin in issuers
        .iter()
        .filter(|t| t.id != id && t.manual_chain.iter().any(|c| c == id))
    {
        set_chain(vault, addr, mount, &twin.id, &[]).await?;
    }
    Ok(Outcome::Done(Some(id.to_string()), None))
}

/// Cross-signs the current issuer `old` of an intermediate by its parent's
/// new issuer (`parent`, or, when the parent's rotation made it earlier in
/// this apply, the parent's issuer whose key has the pending name): a CSR
/// for the existing key (`issuers/generate/intermediate/existing`), signed
/// by that issuer with the CSR's subject and the same subject key id,
/// imported beside `old` (`intermediate/set-signed`); then `manual_chain`
/// on both twins (each: itself, its parent, the other, the other's parent,
/// the parents being the issuers without a key that `set-signed` imported
/// with the chains). Re-entrant: a twin already imported is not signed
/// again; an interruption of the sign call itself costs one more
/// signature.
async fn cross_sign(
    vault: &Vault,
    addr: &Addr,
    ca: &CaChange,
    issuers: &[ObservedIssuer],
    old: &str,
    parent: Option<&str>,
) -> Result<Outcome, ApplyError> {
    let stale = || ApplyError::Stale { addr: addr.clone() };
    let mount = ca.desired.mount.trim_matches('/');
    let (
        CaMethod::Intermediate {
            params,
            sign_params,
            signer:
                Signer::Mount {
                    mount: parent_mount,
                    ..
                },
            ..
        },
        Some(current),
    ) = (&ca.desired.method, issuers.iter().find(|i| i.id == old))
    else {
        return Err(stale());
    };
    let parent_mount = parent_mount.trim_matches('/');
    let parents = observe_issuers(vault, parent_mount)
        .await
        .map_err(ApplyError::vault(addr))?;
    let target = match parent {
        Some(id) => parents.iter().find(|p| p.id == id),
        None => {
            let keys = observe_keys(vault, parent_mount)
                .await
                .map_err(ApplyError::vault(addr))?;
            let pending: BTreeSet<&str> = keys
                .iter()
                .filter(|k| k.name.starts_with(PENDING_KEY_PREFIX))
                .map(|k| k.id.as_str())
                .collect();
            parents
                .iter()
                .find(|p| !p.is_default && !p.is_retired() && pending.contains(p.key_id.as_str()))
        }
    }
    .ok_or_else(stale)?;
    let target_der = first_der(&target.certificate).ok_or_else(stale)?;
    let signed_by_target = |i: &ObservedIssuer| {
        first_der(&i.certificate).is_some_and(|der| x509::is_signed_by(&der, &target_der))
    };
    let twin = match issuers
        .iter()
        .find(|i| i.id != current.id && i.key_id == current.key_id && signed_by_target(i))
    {
        Some(t) => t.id.clone(),
        None => {
            let csr = generate_existing(vault, addr, mount, params, &current.key_id).await?;
            let mut body = sign_params.clone();
            body.insert("use_csr_values", json!(true));
            if let Some(skid) = x509::subject_key_id(&current.certificate) {
                body.insert("skid", json!(skid));
            }
            let pem =
                sign_by_mount(vault, addr, parent_mount, Some(&target.id), &csr, &body).await?;
            let twin = set_signed(vault, addr, mount, &pem, None).await?;
            tracing::info!(%addr, old = %current.id, %twin, parent = %target.id, "cross-signed");
            twin
        }
    };
    if !ca.desired.rotation.manual_chain_declared {
        let parents_here = keyless_issuers(vault, addr, mount).await?;
        let parent_of = |pem: &str| -> Option<String> {
            let der = first_der(pem)?;
            parents_here
                .iter()
                .find(|(_, p)| x509::is_signed_by(&der, p))
                .map(|(id, _)| id.clone())
        };
        let twin_pem = match issuers.iter().find(|i| i.id == twin) {
            Some(t) => t.certificate.clone(),
            None => vault
                .read(&format!("{mount}/issuer/{twin}"))
                .await
                .map_err(ApplyError::vault(addr))?
                .and_then(|d| d.get("certificate")?.as_str().map(str::to_string))
                .unwrap_or_default(),
        };
        let old_parent = parent_of(&current.certificate);
        let twin_parent = parent_of(&twin_pem);
        let chain =
            |own: &str, own_parent: &Option<String>, other: &str, other_parent: &Option<String>| {
                let mut c = vec![own.to_string()];
                c.extend(own_parent.clone());
                c.push(other.to_string());
                c.extend(other_parent.clone());
                c
            };
        let old_chain = chain(&current.id, &old_parent, &twin, &twin_parent);
        let twin_chain = chain(&twin, &twin_parent, &current.id, &old_parent);
        if current.manual_chain != old_chain {
            set_chain(vault, addr, mount, &current.id, &old_chain).await?;
        }
        set_chain(vault, addr, mount, &twin, &twin_chain).await?;
    }
    Ok(Outcome::Done(Some(twin), None))
}

/// The DER of the first certificate of a PEM text.
fn first_der(pem: &str) -> Option<Vec<u8>> {
    x509::pem_certificates(pem).ok()?.into_iter().next()
}

/// The issuers of a mount without a key (certificates `set-signed`
/// imported with a chain: the parents of its intermediates), as `(id,
/// DER)`.
async fn keyless_issuers(
    vault: &Vault,
    addr: &Addr,
    mount: &str,
) -> Result<Vec<(String, Vec<u8>)>, ApplyError> {
    let list = vault
        .list(&format!("{mount}/issuers"))
        .await
        .map_err(ApplyError::vault(addr))?
        .unwrap_or(Value::Null);
    let info = list.get("key_info").and_then(Value::as_object);
    let ids: Vec<String> = super::observe::listed(&list).map(str::to_string).collect();
    let mut out = Vec::new();
    for id in ids {
        let keyed = info
            .and_then(|i| i.get(&id))
            .and_then(|e| e.get("key_id"))
            .and_then(Value::as_str)
            .is_some_and(|k| !k.is_empty());
        if keyed {
            continue;
        }
        let data = vault
            .read(&format!("{mount}/issuer/{id}"))
            .await
            .map_err(ApplyError::vault(addr))?;
        let keyless = data
            .as_ref()
            .and_then(|d| d.get("key_id"))
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        let der = data
            .as_ref()
            .and_then(|d| d.get("certificate"))
            .and_then(Value::as_str)
            .and_then(first_der);
        if let (true, Some(der)) = (keyless, der) {
            out.push((id, der));
        }
    }
    Ok(out)
}

/// `PATCH <mount>/issuer/<id>` `manual_chain` (empty: Vault builds the
/// chain).
async fn set_chain(
    vault: &Vault,
    addr: &Addr,
    mount: &str,
    id: &str,
    chain: &[String],
) -> Result<(), ApplyError> {
    let value = if chain.is_empty() {
        json!("")
    } else {
        json!(chain)
    };
    vault
        .patch(
            &format!("{mount}/issuer/{id}"),
            &json!({"manual_chain": value}),
        )
        .await
        .map(|_| ())
        .map_err(ApplyError::vault(addr))
}

/// `PATCH <mount>/issuer/<id>` `usage`.
async fn set_usage(
    vault: &Vault,
    addr: &Addr,
    mount: &str,
    id: &str,
    usage: &str,
) -> Result<(), ApplyError> {
    vault
        .patch(&format!("{mount}/issuer/{id}"), &json!({"usage": usage}))
        .await
        .map(|_| ())
        .map_err(ApplyError::vault(addr))
}

/// `issuers/generate/root/internal` (named by the call): the new issuer's
/// id.
async fn generate_root(
    vault: &Vault,
    addr: &Addr,
    desired: &DesiredCa,
    params: &crate::state::Fields,
) -> Result<String, ApplyError> {
    let mount = desired.mount.trim_matches('/');
    let mut body: Map<String, Value> = params.clone().into_iter().collect();
    if let Some(name) = &desired.issuer_name {
        body.insert("issuer_name".into(), json!(name));
    }
    let path = format!("{mount}/issuers/generate/root/internal");
    write_for(vault, addr, &path, body, "issuer_id").await
}

/// `POST <path>` (sent once: it makes something) and the text `field` of
/// the reply.
async fn write_for(
    vault: &Vault,
    addr: &Addr,
    path: &str,
    body: Map<String, Value>,
    field: &str,
) -> Result<String, ApplyError> {
    let data = vault
        .write(path, &Value::Object(body))
        .await
        .map_err(ApplyError::vault(addr))?;
    str_field(data.as_ref(), field).ok_or_else(|| no_field(addr, path, field))
}

/// `issuers/import/bundle` of a CA bundle read from its source now: the
/// imported issuer's id. The bundle (with its key) is dropped at once.
async fn import_bundle(
    vault: &Vault,
    addr: &Addr,
    mount: &str,
    bundle: &crate::model::Source,
) -> Result<String, ApplyError> {
    let pem = bundle.read().map_err(|e| ApplyError::Secret {
        addr: addr.clone(),
        what: format!("the CA bundle ({})", bundle.describe()),
        source: Box::new(e),
    })?;
    let path = format!("{mount}/issuers/import/bundle");
    let data = vault
        .write(&path, &json!({"pem_bundle": pem.expose()}))
        .await
        .map_err(ApplyError::vault(addr))?;
    let first = certificate_blocks(pem.expose()).into_iter().next();
    drop(pem);
    find_imported(
        vault,
        addr,
        mount,
        &path,
        data.as_ref(),
        first.as_deref(),
        None,
    )
    .await
}

/// How an intermediate is made (the parts of [`CaMethod::Intermediate`]).
struct Intermediate<'a> {
    params: &'a crate::state::Fields,
    sign_params: &'a crate::state::Fields,
    export_key: bool,
    signer: &'a Signer,
}

/// What making an intermediate led to.
enum Made {
    /// The issuer holding the new key, and the key if it was exported.
    Issuer(String, Option<ExportedKey>),
    /// A CSR waits for a signature by hand.
    Waiting(Waiting),
}

/// An intermediate: a certificate committed for a manual CSR is imported;
/// a certificate the parent signed before an interrupted apply stopped is
/// imported (no second signature); otherwise a CSR is made (for the
/// pending key when resuming), signed, and imported.
async fn make_intermediate(
    vault: &Vault,
    addr: &Addr,
    ca: &CaChange,
    pending: Option<&str>,
    record: Option<&Record<'_>>,
) -> Result<Made, ApplyError> {
    let desired = &ca.desired;
    let CaMethod::Intermediate {
        params,
        sign_params,
        export_key,
        signer,
    } = &desired.method
    else {
        return Err(ApplyError::Unsupported {
            addr: addr.clone(),
            why: "the plan makes an intermediate of a CA that is not one; run plan again".into(),
        });
    };
    let how = &Intermediate {
        params,
        sign_params,
        export_key: *export_key,
        signer,
    };
    let mount = desired.mount.trim_matches('/');
    match how.signer {
        Signer::Manual {
            certificate_pem: Some(cert),
            csr_file,
            ..
        } => {
            let id = set_signed(vault, addr, mount, cert, Some(csr_file)).await?;
            return Ok(Made::Issuer(id, None));
        }
        Signer::Manual {
            certificate_pem: None,
            csr_pem: Some(csr),
            csr_file,
            certificate_file,
        } => {
            // The key and CSR exist from an earlier apply: still waiting.
            return Ok(Made::Waiting(Waiting {
                addr: addr.clone(),
                csr_file: csr_file.clone(),
                csr_pem: csr.clone(),
                certificate_file: certificate_file.clone(),
            }));
        }
        _ => {}
    }
    // A certificate the parent signed for the pending key before the apply
    // stopped: import it, no second signature.
    let recorded = match (how.signer, pending, record) {
        (Signer::Mount { mount: parent, .. }, Some(key_id), Some(r)) => {
            r.recall(vault, key_id, parent.trim_matches('/'), desired)
                .await
        }
        _ => None,
    };
    if let Some(bundle) = recorded {
        tracing::info!(%addr, "importing the certificate the parent signed before the apply stopped");
        let id = set_signed(vault, addr, mount, &bundle, None).await?;
        return Ok(Made::Issuer(id, None));
    }
    // An exported key is never resumed (its private key left Vault once,
    // with the apply that stopped): the planner deletes such a pending key
    // before this change.
    let (csr, key_id, key) = match (&ca.pending_key, pending) {
        (Some(name), Some(id)) => {
            let csr = generate_existing(vault, addr, mount, how.params, name).await?;
            (csr, id.to_string(), None)
        }
        _ => {
            let key_name = desired.pending_key_name();
            generate_csr(
                vault,
                addr,
                mount,
                how.params,
                how.export_key,
                key_name.as_deref(),
            )
            .await?
        }
    };
    let bundle = match sign_csr(vault, addr, desired, how, &csr, &key_id, record).await? {
        Signed::Bundle(pem) => pem,
        Signed::Waiting(w) => return Ok(Made::Waiting(w)),
    };
    let id = set_signed(vault, addr, mount, &bundle, None).await?;
    let exported = key.map(|key| ExportedKey {
        addr: addr.clone(),
        mount: mount.to_string(),
        key,
        chain_pem: bundle.clone(),
    });
    Ok(Made::Issuer(id, exported))
}

/// What signing a CSR led to.
enum Signed {
    /// The certificate and its chain (PEM).
    Bundle(String),
    /// The CSR was written for a signature by hand.
    Waiting(Waiting),
}

/// Has the intermediate's CSR signed: by the parent mount (and records the
/// certificate until it is imported), in-process with the external CA's
/// key, or by hand (writes the CSR next to where the certificate is
/// expected).
async fn sign_csr(
    vault: &Vault,
    addr: &Addr,
    desired: &DesiredCa,
    how: &Intermediate<'_>,
    csr: &str,
    key_id: &str,
    record: Option<&Record<'_>>,
) -> Result<Signed, ApplyError> {
    match how.signer {
        Signer::Mount {
            mount: parent,
            issuer_ref,
        } => {
            let pem = sign_by_mount(
                vault,
                addr,
                parent,
                issuer_ref.as_deref(),
                csr,
                how.sign_params,
            )
            .await?;
            if let Some(r) = record {
                r.remember(vault, key_id, parent.trim_matches('/'), &pem)
                    .await;
            }
            Ok(Signed::Bundle(pem))
        }
        Signer::External {
            ca_cert_pem,
            ca_key,
        } => {
            let key = ca_key.read().map_err(|e| ApplyError::Secret {
                addr: addr.clone(),
                what: format!("the signing CA key ({})", ca_key.describe()),
                source: Box::new(e),
            })?;
            let ttl = how
                .sign_params
                .get("ttl")
                .and_then(super::normalize::duration_secs)
                .or(desired.ttl);
            let max_path = how
                .sign_params
                .get("max_path_length")
                .and_then(Value::as_i64)
                .map(|n| n.clamp(-1, 255) as i32);
            let signed =
                sign_intermediate_csr(csr, ca_cert_pem, &key, ttl, max_path).map_err(|source| {
                    ApplyError::Sign {
                        addr: addr.clone(),
                        source: Box::new(source),
                    }
                })?;
            drop(key);
            Ok(Signed::Bundle(format!(
                "{}{}",
                signed.certificate_pem, signed.chain_pem
            )))
        }
        Signer::Manual {
            csr_file,
            certificate_file,
            ..
        } => {
            let csr_error = |source| ApplyError::CsrFile {
                addr: addr.clone(),
                path: csr_file.clone(),
                source,
            };
            if let Some(dir) = csr_file.parent().filter(|d| !d.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(dir).await.map_err(csr_error)?;
            }
            tokio::fs::write(csr_file, csr).await.map_err(csr_error)?;
            Ok(Signed::Waiting(Waiting {
                addr: addr.clone(),
                csr_file: csr_file.clone(),
                csr_pem: csr.to_string(),
                certificate_file: certificate_file.clone(),
            }))
        }
    }
}

/// The last steps of a new CA: name it (a root was named by its generate
/// call), make it the default, and for an intermediate clear its key's
/// pending name and forget the record of its signed certificate.
async fn finish(
    vault: &Vault,
    addr: &Addr,
    desired: &DesiredCa,
    id: String,
    record: Option<&Record<'_>>,
    exported: Option<ExportedKey>,
) -> Result<Outcome, ApplyError> {
    let mount = desired.mount.trim_matches('/');
    if let Some(name) = &desired.issuer_name
        && !matches!(desired.method, CaMethod::Root { .. })
    {
        set_name(vault, addr, mount, &id, name).await?;
    }
    set_default(vault, addr, mount, &id).await?;
    if let Some(key_name) = desired.pending_key_name() {
        let keys = observe_keys(vault, mount)
            .await
            .map_err(ApplyError::vault(addr))?;
        // A manual CSR made by an older certplane has an unnamed key.
        if keys.iter().any(|k| k.name == key_name) {
            clear_key_name(vault, addr, mount, &key_name).await?;
        }
        if let Some(r) = record {
            r.forget(vault).await;
        }
    }
    Ok(Outcome::Done(Some(id), exported))
}

/// Clears the pending name of a key (`<mount>/key/<name>` with an empty
/// `key_name`): the CA it belongs to is complete.
async fn clear_key_name(
    vault: &Vault,
    addr: &Addr,
    mount: &str,
    name: &str,
) -> Result<(), ApplyError> {
    vault
        .write(&format!("{mount}/key/{name}"), &json!({"key_name": ""}))
        .await
        .map(|_| ())
        .map_err(ApplyError::vault(addr))
}

fn str_field(data: Option<&Value>, key: &str) -> Option<String> {
    data?
        .get(key)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn no_field(addr: &Addr, path: &str, key: &str) -> ApplyError {
    ApplyError::Vault {
        addr: addr.clone(),
        source: Box::new(VaultError::BadReply {
            op: "write",
            path: path.to_string(),
            why: format!("no {key} in the reply"),
        }),
    }
}

/// `issuers/generate/intermediate/{internal|exported}` with the key named
/// `key_name`: the CSR, the new key's id, and the private key when it is
/// exported (Vault returns it this once). A name already taken means another
/// apply made the key since the plan: stale.
async fn generate_csr(
    vault: &Vault,
    addr: &Addr,
    mount: &str,
    params: &crate::state::Fields,
    export_key: bool,
    key_name: Option<&str>,
) -> Result<(String, String, Option<Sensitive>), ApplyError> {
    let kind = if export_key { "exported" } else { "internal" };
    let path = format!("{mount}/issuers/generate/intermediate/{kind}");
    let mut body: Map<String, Value> = params.clone().into_iter().collect();
    if let Some(name) = key_name {
        body.insert("key_name".into(), json!(name));
    }
    let data = match vault.write(&path, &Value::Object(body)).await {
        Ok(d) => d,
        Err(VaultError::Api {
            status: 400,
            message,
            ..
        }) if message.contains("key name already in use") => {
            return Err(ApplyError::Stale { addr: addr.clone() });
        }
        Err(e) => return Err(ApplyError::vault(addr)(e)),
    };
    let csr = str_field(data.as_ref(), "csr").ok_or_else(|| no_field(addr, &path, "csr"))?;
    let key_id = str_field(data.as_ref(), "key_id").unwrap_or_default();
    let key = if export_key {
        Some(
            str_field(data.as_ref(), "private_key")
                .map(Sensitive::new)
                .ok_or_else(|| no_field(addr, &path, "private_key"))?,
        )
    } else {
        None
    };
    Ok((csr, key_id, key))
}

/// `issuers/generate/intermediate/existing` with `key_ref`: a new CSR for
/// the key an interrupted apply generated (its type and size are the key's:
/// they are not sent).
async fn generate_existing(
    vault: &Vault,
    addr: &Addr,
    mount: &str,
    params: &crate::state::Fields,
    key_ref: &str,
) -> Result<String, ApplyError> {
    let path = format!("{mount}/issuers/generate/intermediate/existing");
    let mut body: Map<String, Value> = params
        .clone()
        .into_iter()
        .filter(|(k, _)| !matches!(k.as_str(), "key_type" | "key_bits" | "key_name"))
        .collect();
    body.insert("key_ref".into(), json!(key_ref));
    write_for(vault, addr, &path, body, "csr").await
}

/// `<parent>/root/sign-intermediate` (or `<parent>/issuer/<ref>/...`): the
/// certificate followed by its chain, as one PEM text.
async fn sign_by_mount(
    vault: &Vault,
    addr: &Addr,
    parent: &str,
    issuer_ref: Option<&str>,
    csr: &str,
    sign_params: &crate::state::Fields,
) -> Result<String, ApplyError> {
    let parent = parent.trim_matches('/');
    let path = match issuer_ref {
        Some(r) => format!("{parent}/issuer/{r}/sign-intermediate"),
        None => format!("{parent}/root/sign-intermediate"),
    };
    let mut body: Map<String, Value> = sign_params.clone().into_iter().collect();
    body.insert("csr".into(), json!(csr));
    body.insert("format".into(), json!("pem_bundle"));
    let data = vault
        .write(&path, &Value::Object(body))
        .await
        .map_err(ApplyError::vault(addr))?;
    let cert = str_field(data.as_ref(), "certificate")
        .ok_or_else(|| no_field(addr, &path, "certificate"))?;
    let mut blocks = certificate_blocks(&cert);
    let chain = data
        .as_ref()
        .and_then(|d| d.get("ca_chain"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in chain.iter().filter_map(Value::as_str) {
        for b in certificate_blocks(c) {
            if !blocks.contains(&b) {
                blocks.push(b);
            }
        }
    }
    Ok(blocks.concat())
}

/// `<mount>/intermediate/set-signed`: the id of the issuer holding the key.
async fn set_signed(
    vault: &Vault,
    addr: &Addr,
    mount: &str,
    pem: &str,
    csr_file: Option<&std::path::PathBuf>,
) -> Result<String, ApplyError> {
    let path = format!("{mount}/intermediate/set-signed");
    let data = vault
        .write(&path, &json!({"certificate": pem}))
        .await
        .map_err(ApplyError::vault(addr))?;
    let first = certificate_blocks(pem).into_iter().next();
    find_imported(
        vault,
        addr,
        mount,
        &path,
        data.as_ref(),
        first.as_deref(),
        csr_file,
    )
    .await
}

/// The issuer an import made: the one of the reply's `mapping` that has a
/// key, else the keyed issuer whose certificate is the first of the PEM.
async fn find_imported(
    vault: &Vault,
    addr: &Addr,
    mount: &str,
    path: &str,
    data: Option<&Value>,
    first_cert: Option<&str>,
    csr_file: Option<&std::path::PathBuf>,
) -> Result<String, ApplyError> {
    let mapped: Vec<String> = data
        .and_then(|d| d.get("mapping"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(_, key)| key.as_str().is_some_and(|k| !k.is_empty()))
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default();
    let sha = first_cert
        .and_then(|c| x509::parse_pem(c).ok())
        .map(|i| i.sha256);
    if mapped.len() == 1 {
        return Ok(mapped[0].clone());
    }
    let issuers = observe_issuers(vault, mount)
        .await
        .map_err(ApplyError::vault(addr))?;
    let found = issuers
        .iter()
        .find(|i| sha.as_deref() == Some(i.cert_sha256.as_str()))
        .or_else(|| issuers.iter().find(|i| mapped.contains(&i.id)));
    match found {
        Some(i) => Ok(i.id.clone()),
        None => Err(ApplyError::Vault {
            addr: addr.clone(),
            source: Box::new(VaultError::BadReply {
                op: "write",
                path: path.to_string(),
                why: match csr_file {
                    Some(f) => format!(
                        "the certificate does not match any key of {mount}; sign the CSR in {} (the key certplane generated)",
                        f.display()
                    ),
                    None => format!("no issuer with a key of {mount} holds the certificate"),
                },
            }),
        }),
    }
}

async fn set_name(
    vault: &Vault,
    addr: &Addr,
    mount: &str,
    id: &str,
    name: &str,
) -> Result<(), ApplyError> {
    vault
        .patch(
            &format!("{mount}/issuer/{id}"),
            &json!({"issuer_name": name}),
        )
        .await
        .map(|_| ())
        .map_err(ApplyError::vault(addr))
}

async fn set_default(vault: &Vault, addr: &Addr, mount: &str, id: &str) -> Result<(), ApplyError> {
    vault
        .write_idempotent(&format!("{mount}/config/issuers"), &json!({"default": id}))
        .await
        .map(|_| ())
        .map_err(ApplyError::vault(addr))
}
