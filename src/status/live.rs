//! What `status` reads of the live Vault: for each declared PKI mount, its
//! issuers (with their certificate, key, usage), its default issuer and its
//! keys. Reads only (`GET` and `LIST`): `status` never writes, not even the
//! apply lock.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;
use x509_parser::prelude::*;

use crate::pki::x509;
use crate::state::ObservedKey;
use crate::vault::observe::CONCURRENCY;
use crate::vault::{Vault, VaultError};

/// The facts of an issuer's certificate that `status` shows and links by.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CertFacts {
    /// Subject CN.
    pub common_name: String,
    /// Issuer CN.
    pub issued_by: String,
    /// The whole subject DN (RFC 4514 style).
    pub subject: String,
    /// The whole issuer DN.
    pub issuer: String,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// subjectKeyIdentifier, lowercase hex.
    pub ski: Option<String>,
    /// authorityKeyIdentifier's key identifier, lowercase hex.
    pub aki: Option<String>,
    /// The DER, for a signature check when the identifiers do not decide.
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// Why a certificate could not be read for `status`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CertFactsError(String);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl CertFacts {
    /// Reads the first certificate of a PEM text.
    pub fn from_pem(pem: &str) -> Result<CertFacts, CertFactsError> {
        let info = x509::parse_pem(pem).map_err(|e| CertFactsError(e.to_string()))?;
        let (_, cert) = X509Certificate::from_der(&info.der)
            .map_err(|e| CertFactsError(format!("not a valid X.509 certificate: {e}")))?;
        let mut ski = None;
        let mut aki = None;
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(hex(k.0)),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    aki = a.key_identifier.as_ref().map(|k| hex(k.0));
                }
                _ => {}
            }
        }
        Ok(CertFacts {
            common_name: info.common_name,
            issued_by: info.issued_by,
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: info.not_before,
            not_after: info.not_after,
            ski,
            aki,
            der: info.der,
        })
    }
}

/// One issuer of a PKI mount that holds a key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LiveIssuer {
    /// `issuer_id`.
    pub id: String,
    /// `issuer_name` (may be empty).
    pub name: String,
    /// `key_id`.
    pub key_id: String,
    /// `usage`, split (`read-only`, `issuing-certificates`, `crl-signing`,
    /// `ocsp-signing`).
    pub usage: Vec<String>,
    /// Its certificate.
    pub cert: CertFacts,
}

/// One declared PKI mount as Vault has it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LiveMount {
    /// Whether the mount exists.
    pub exists: bool,
    /// The id of its default issuer.
    pub default_id: Option<String>,
    /// Its issuers that hold a key, by id.
    pub issuers: Vec<LiveIssuer>,
    /// Its keys.
    pub keys: Vec<ObservedKey>,
}

/// The live PKI of the declared mounts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LivePki {
    /// When it was read (Unix seconds).
    pub now: i64,
    /// The Vault address.
    pub address: String,
    /// By mount path.
    pub mounts: BTreeMap<String, LiveMount>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn text(data: &Value, key: &str) -> String {
    data.get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn list_keys(list: Option<Value>) -> Vec<String> {
    list.as_ref()
        .map(|l| {
            crate::vault::observe::listed(l)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

async fn read_issuer(
    vault: &Vault,
    mount: &str,
    id: &str,
) -> Result<Option<LiveIssuer>, VaultError> {
    let path = format!("{mount}/issuer/{id}");
    let Some(data) = vault.read(&path).await? else {
        return Ok(None);
    };
    // An issuer without a key is a certificate imported with a chain (a
    // parent's): not this mount's CA.
    if text(&data, "key_id").is_empty() {
        return Ok(None);
    }
    let cert =
        CertFacts::from_pem(&text(&data, "certificate")).map_err(|e| VaultError::BadReply {
            op: "read",
            path: path.clone(),
            why: format!("its certificate: {e}"),
        })?;
    let mut usage = strings(data.get("usage"));
    usage.sort();
    Ok(Some(LiveIssuer {
        id: match text(&data, "issuer_id") {
            s if s.is_empty() => id.to_string(),
            s => s,
        },
        name: text(&data, "issuer_name"),
        key_id: text(&data, "key_id"),
        usage,
        cert,
    }))
}

async fn read_mount(vault: &Vault, mount: &str) -> Result<LiveMount, VaultError> {
    let ids = list_keys(vault.list(&format!("{mount}/issuers")).await?);
    let default_id = vault
        .read(&format!("{mount}/config/issuers"))
        .await?
        .and_then(|d| d.get("default").and_then(Value::as_str).map(str::to_string))
        .filter(|s| !s.is_empty());
    let reads = stream::iter(ids.iter().map(|id| read_issuer(vault, mount, id)))
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut issuers = Vec::new();
    for r in reads {
        if let Some(i) = r? {
            issuers.push(i);
        }
    }
    issuers.sort_by(|a, b| {
        (a.cert.not_before, &a.id)
            .cmp(&(b.cert.not_before, &b.id))
            .reverse()
    });
    let keys = crate::vault::observe::observe_keys(vault, mount).await?;
    Ok(LiveMount {
        exists: true,
        default_id,
        issuers,
        keys,
    })
}

/// Reads the live PKI of `mounts` (paths without slashes around them):
/// one `GET sys/mounts`, then per existing PKI mount its issuers, default
/// issuer and keys. Nothing is written.
pub async fn observe(vault: &Vault, mounts: &[String]) -> Result<LivePki, VaultError> {
    let table = vault.read("sys/mounts").await?.unwrap_or(Value::Null);
    let pki: Vec<String> = table
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, e)| e.get("type").and_then(Value::as_str) == Some("pki"))
                .map(|(k, _)| k.trim_end_matches('/').to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut live = LivePki {
        now: crate::vault::observe::unix_now(),
        address: vault.address().to_string(),
        mounts: BTreeMap::new(),
    };
    let found = stream::iter(
        mounts
            .iter()
            .filter(|m| pki.contains(*m))
            .map(|m| async move { (m.clone(), read_mount(vault, m).await) }),
    )
    .buffer_unordered(4)
    .collect::<Vec<_>>()
    .await;
    for (m, r) in found {
        live.mounts.insert(m, r?);
    }
    for m in mounts {
        live.mounts.entry(m.clone()).or_default();
    }
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_from_a_string_or_a_list() {
        assert_eq!(
            strings(Some(&serde_json::json!("read-only,issuing-certificates"))),
            vec!["read-only", "issuing-certificates"]
        );
        assert_eq!(
            strings(Some(&serde_json::json!(["crl-signing"]))),
            vec!["crl-signing"]
        );
        assert!(strings(None).is_empty());
    }

    #[test]
    fn key_identifiers_link_a_child_to_its_parent() {
        let root_key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "Test Root");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_identifier_method = rcgen::KeyIdMethod::Sha256;
        let root = p.self_signed(&root_key).unwrap();
        let root_issuer = rcgen::Issuer::new(p, &root_key);
        let child_key = rcgen::KeyPair::generate().unwrap();
        let mut c = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        c.distinguished_name
            .push(rcgen::DnType::CommonName, "Test Int");
        c.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        c.use_authority_key_identifier_extension = true;
        let child = c.signed_by(&child_key, &root_issuer).unwrap();
        let r = CertFacts::from_pem(&root.pem()).unwrap();
        let i = CertFacts::from_pem(&child.pem()).unwrap();
        assert_eq!(r.common_name, "Test Root");
        assert_eq!(i.issued_by, "Test Root");
        assert!(r.ski.is_some());
        assert_eq!(i.aki, r.ski, "the child's AKI is the root's SKI");
        assert_ne!(i.ski, r.ski);
        assert!(i.issuer.contains("Test Root"), "{}", i.issuer);
        assert!(CertFacts::from_pem("nothing").is_err());
    }
}
