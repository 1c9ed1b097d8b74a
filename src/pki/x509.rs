//! Reading X.509 certificates: the few facts certplane decides on (subject,
//! issuer, key, lifetime, basicConstraints) and signature checks.

use x509_parser::oid_registry;
use x509_parser::pem::Pem;
use x509_parser::prelude::*;

use crate::model::KeyType;

/// What certplane needs to know of a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject CN (empty when absent).
    pub common_name: String,
    /// Issuer CN (empty when absent).
    pub issued_by: String,
    /// basicConstraints CA flag.
    pub is_ca: bool,
    /// basicConstraints pathLen (`None`: unlimited or not a CA).
    pub path_len: Option<u32>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Key algorithm, if one certplane knows.
    pub key_type: Option<KeyType>,
    /// Key size in bits (0 for ed25519 / unknown).
    pub key_bits: u32,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
    /// The DER itself.
    pub der: Vec<u8>,
}

/// Why a certificate could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// No `CERTIFICATE` PEM block in the input.
    #[error("no PEM CERTIFICATE block found")]
    NoCertificate,
    /// The PEM is malformed.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// The DER does not parse as X.509.
    #[error("not a valid X.509 certificate: {0}")]
    Der(String),
}

/// Every `CERTIFICATE` block of a PEM text, in order, as DER. Other blocks
/// (private keys) are skipped and never copied.
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, CertError> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| CertError::Pem(e.to_string()))?;
        if block.label == "CERTIFICATE" {
            out.push(block.contents);
        }
    }
    Ok(out)
}

/// The first certificate of a PEM text.
pub fn parse_pem(pem: &str) -> Result<CertInfo, CertError> {
    let der = pem_certificates(pem)?
        .into_iter()
        .next()
        .ok_or(CertError::NoCertificate)?;
    parse_der(&der)
}

/// Reads a DER certificate.
pub fn parse_der(der: &[u8]) -> Result<CertInfo, CertError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::Der(e.to_string()))?;
    let cn = |name: &X509Name<'_>| {
        name.iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (is_ca, path_len) = match cert.basic_constraints() {
        Ok(Some(bc)) => (bc.value.ca, bc.value.path_len_constraint),
        _ => (false, None),
    };
    let spki = cert.public_key();
    let alg = &spki.algorithm.algorithm;
    let (key_type, key_bits) = if *alg == oid_registry::OID_PKCS1_RSAENCRYPTION {
        let bits = spki.parsed().map(|k| k.key_size() as u32).unwrap_or(0);
        (Some(KeyType::Rsa), bits)
    } else if *alg == oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.to_id_string())
            .unwrap_or_default();
        let bits = match curve.as_str() {
            "1.3.132.0.33" => 224,
            "1.2.840.10045.3.1.7" => 256,
            "1.3.132.0.34" => 384,
            "1.3.132.0.35" => 521,
            _ => 0,
        };
        (Some(KeyType::Ec), bits)
    } else if alg.to_id_string() == "1.3.101.112" {
        (Some(KeyType::Ed25519), 0)
    } else {
        (None, 0)
    };
    Ok(CertInfo {
        common_name: cn(cert.subject()),
        issued_by: cn(cert.issuer()),
        is_ca,
        path_len,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        key_type,
        key_bits,
        sha256: sha256_hex(der),
        der: der.to_vec(),
    })
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The subjectKeyIdentifier of a PEM certificate, as Vault's `skid`
/// parameter spells it (`aa:bb:...`, lowercase hex); `None` without one.
pub fn subject_key_id(pem: &str) -> Option<String> {
    let der = pem_certificates(pem).ok()?.into_iter().next()?;
    let (_, cert) = X509Certificate::from_der(&der).ok()?;
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(
                id.0.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
            _ => None,
        })
}

/// Whether `child` (DER) carries a valid signature by `issuer` (DER)'s key.
pub fn is_signed_by(child: &[u8], issuer: &[u8]) -> bool {
    let (Ok((_, c)), Ok((_, i))) = (
        X509Certificate::from_der(child),
        X509Certificate::from_der(issuer),
    ) else {
        return false;
    };
    c.verify_signature(Some(i.public_key())).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(key: &rcgen::KeyPair, cn: &str, path_len: Option<u8>) -> rcgen::Certificate {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = match path_len {
            Some(n) => rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(n)),
            None => rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained),
        };
        p.self_signed(key).unwrap()
    }

    #[test]
    fn reads_subject_key_and_path_length() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let cert = ca(&key, "Test Root", Some(0));
        let info = parse_pem(&cert.pem()).unwrap();
        assert_eq!(info.common_name, "Test Root");
        assert_eq!(info.issued_by, "Test Root");
        assert!(info.is_ca);
        assert_eq!(info.path_len, Some(0));
        assert_eq!(info.key_type, Some(KeyType::Ec));
        assert_eq!(info.key_bits, 384);
        assert!(is_signed_by(&info.der, &info.der));
    }

    #[test]
    fn reads_the_subject_key_identifier_as_vault_spells_it() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![0x0a, 0xff, 0x10]);
        let cert = p.self_signed(&key).unwrap();
        assert_eq!(subject_key_id(&cert.pem()).as_deref(), Some("0a:ff:10"));
        assert_eq!(subject_key_id("not a certificate"), None);
    }

    #[test]
    fn skips_private_keys_in_a_bundle() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let cert = ca(&key, "Ed Root", None);
        let bundle = format!("{}{}", key.serialize_pem(), cert.pem());
        let certs = pem_certificates(&bundle).unwrap();
        assert_eq!(certs.len(), 1);
        let info = parse_der(&certs[0]).unwrap();
        assert_eq!(info.key_type, Some(KeyType::Ed25519));
        assert_eq!(info.path_len, None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(parse_pem("hello"), Err(CertError::NoCertificate)));
    }
}
