//! Making, adopting and rotating the CA (issuer) of a PKI mount.
//!
//! A CA is made once: root (`issuers/generate/root/internal`), intermediate
//! (`issuers/generate/intermediate/*`, signed by a parent mount, in-process,
//! or by hand, then `intermediate/set-signed`) or import
//! (`issuers/import/bundle`). A new issuer is then named and made the mount's
//! default. A rotation renames the superseded issuer if it holds the name and
//! leaves it in place.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::apply::{ApplyError, ExportedKey, Outcome, Waiting, parent_created};
use super::observe::observe_issuers;
use super::{Vault, VaultError};
use crate::addr::Addr;
use crate::model::Sensitive;
use crate::pki::sign::{certificate_blocks, sign_intermediate_csr};
use crate::pki::x509;
use crate::plan::{Action, CaChange, Change};
use crate::state::{CaMethod, DesiredCa, ObservedIssuer, Signer};

/// Applies an issuer change.
pub(crate) async fn apply_issuer(
    vault: &Vault,
    change: &Change,
    created: &BTreeSet<Addr>,
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
    recheck(change, ca, &issuers, created)?;
    let existing = ca
        .existing_id
        .as_ref()
        .and_then(|id| issuers.iter().find(|i| &i.id == id));
    match change.action {
        Action::Create => create(vault, addr, &ca.desired).await,
        Action::Update => {
            let Some(current) = existing else {
                return Err(ApplyError::Stale { addr: addr.clone() });
            };
            if let Some(name) = &ca.desired.issuer_name
                && current.name != *name
            {
                set_name(vault, addr, mount, &current.id, name).await?;
            }
            if !current.is_default {
                set_default(vault, addr, mount, &current.id).await?;
            }
            Ok(Outcome::Done(Some(current.id.clone()), None))
        }
        Action::Replace => {
            let Some(old) = existing else {
                return Err(ApplyError::Stale { addr: addr.clone() });
            };
            if let Some(name) = &ca.desired.issuer_name
                && old.name == *name
            {
                let short: String = old.id.chars().take(8).collect();
                set_name(vault, addr, mount, &old.id, &format!("{name}-{short}")).await?;
            }
            create(vault, addr, &ca.desired).await
        }
        Action::Delete | Action::NoOp => Err(ApplyError::Unsupported {
            addr: addr.clone(),
            why: "certplane never deletes a CA; revoke or delete the issuer by hand (bao delete <mount>/issuer/<id>)"
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

/// Makes the CA, names it and makes it the default.
async fn create(vault: &Vault, addr: &Addr, desired: &DesiredCa) -> Result<Outcome, ApplyError> {
    let mount = desired.mount.trim_matches('/');
    let err = ApplyError::vault(addr);
    let mut exported = None;
    let id = match &desired.method {
        CaMethod::Root { params } => {
            let mut body: Map<String, Value> = params.clone().into_iter().collect();
            if let Some(name) = &desired.issuer_name {
                body.insert("issuer_name".into(), json!(name));
            }
            let path = format!("{mount}/issuers/generate/root/internal");
            let data = vault
                .write(&path, &Value::Object(body))
                .await
                .map_err(err)?;
            str_field(data.as_ref(), "issuer_id")
                .ok_or_else(|| no_field(addr, &path, "issuer_id"))?
        }
        CaMethod::Intermediate {
            params,
            sign_params,
            export_key,
            signer,
        } => {
            if let Signer::Manual {
                certificate_pem: Some(cert),
                csr_file,
                ..
            } = signer
            {
                set_signed(vault, addr, mount, cert, Some(csr_file)).await?
            } else if let Signer::Manual {
                certificate_pem: None,
                csr_pem: Some(csr),
                csr_file,
                certificate_file,
            } = signer
            {
                // The key and CSR exist from an earlier apply: still waiting.
                return Ok(Outcome::Waiting(Waiting {
                    addr: addr.clone(),
                    csr_file: csr_file.clone(),
                    csr_pem: csr.clone(),
                    certificate_file: certificate_file.clone(),
                }));
            } else {
                let (csr, key) = generate_csr(vault, addr, mount, params, *export_key).await?;
                let bundle = match signer {
                    Signer::Mount {
                        mount: parent,
                        issuer_ref,
                    } => {
                        sign_by_mount(
                            vault,
                            addr,
                            parent,
                            issuer_ref.as_deref(),
                            &csr,
                            sign_params,
                        )
                        .await?
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
                        let ttl = sign_params
                            .get("ttl")
                            .and_then(super::normalize::duration_secs)
                            .or(desired.ttl);
                        let max_path = sign_params
                            .get("max_path_length")
                            .and_then(Value::as_i64)
                            .map(|n| n.clamp(-1, 255) as i32);
                        let signed = sign_intermediate_csr(&csr, ca_cert_pem, &key, ttl, max_path)
                            .map_err(|source| ApplyError::Sign {
                                addr: addr.clone(),
                                source: Box::new(source),
                            })?;
                        drop(key);
                        format!("{}{}", signed.certificate_pem, signed.chain_pem)
                    }
                    Signer::Manual {
                        csr_file,
                        certificate_file,
                        ..
                    } => {
                        if let Some(dir) = csr_file.parent().filter(|d| !d.as_os_str().is_empty()) {
                            tokio::fs::create_dir_all(dir).await.map_err(|source| {
                                ApplyError::CsrFile {
                                    addr: addr.clone(),
                                    path: csr_file.clone(),
                                    source,
                                }
                            })?;
                        }
                        tokio::fs::write(csr_file, &csr).await.map_err(|source| {
                            ApplyError::CsrFile {
                                addr: addr.clone(),
                                path: csr_file.clone(),
                                source,
                            }
                        })?;
                        return Ok(Outcome::Waiting(Waiting {
                            addr: addr.clone(),
                            csr_file: csr_file.clone(),
                            csr_pem: csr,
                            certificate_file: certificate_file.clone(),
                        }));
                    }
                };
                let id = set_signed(vault, addr, mount, &bundle, None).await?;
                exported = key.map(|key| ExportedKey {
                    addr: addr.clone(),
                    mount: mount.to_string(),
                    key,
                    chain_pem: bundle.clone(),
                });
                id
            }
        }
        CaMethod::Import { bundle } => {
            let pem = bundle.read().map_err(|e| ApplyError::Secret {
                addr: addr.clone(),
                what: format!("the CA bundle ({})", bundle.describe()),
                source: Box::new(e),
            })?;
            let path = format!("{mount}/issuers/import/bundle");
            let data = vault
                .write(&path, &json!({"pem_bundle": pem.expose()}))
                .await
                .map_err(err)?;
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
            .await?
        }
    };
    // Name it (a root was named by its generate call).
    if let Some(name) = &desired.issuer_name
        && !matches!(desired.method, CaMethod::Root { .. })
    {
        set_name(vault, addr, mount, &id, name).await?;
    }
    set_default(vault, addr, mount, &id).await?;
    Ok(Outcome::Done(Some(id), exported))
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

/// `issuers/generate/intermediate/{internal|exported}`: the CSR, and the
/// private key when it is exported (Vault returns it this once).
async fn generate_csr(
    vault: &Vault,
    addr: &Addr,
    mount: &str,
    params: &crate::state::Fields,
    export_key: bool,
) -> Result<(String, Option<Sensitive>), ApplyError> {
    let kind = if export_key { "exported" } else { "internal" };
    let path = format!("{mount}/issuers/generate/intermediate/{kind}");
    let body: Map<String, Value> = params.clone().into_iter().collect();
    let data = vault
        .write(&path, &Value::Object(body))
        .await
        .map_err(ApplyError::vault(addr))?;
    let csr = str_field(data.as_ref(), "csr").ok_or_else(|| no_field(addr, &path, "csr"))?;
    let key = if export_key {
        Some(
            str_field(data.as_ref(), "private_key")
                .map(Sensitive::new)
                .ok_or_else(|| no_field(addr, &path, "private_key"))?,
        )
    } else {
        None
    };
    Ok((csr, key))
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
        .write(&format!("{mount}/config/issuers"), &json!({"default": id}))
        .await
        .map(|_| ())
        .map_err(ApplyError::vault(addr))
}
