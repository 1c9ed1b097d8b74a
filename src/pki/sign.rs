//! Signing an intermediate CA's CSR in-process (`signedBy.external`): the CA
//! key is read from its source at apply time, parsed here, used once and
//! dropped. It is never written anywhere, and no error carries it.

use rcgen::{
    BasicConstraints, CertificateSigningRequestParams, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData, SerialNumber,
};
use ring::rand::SecureRandom;

use crate::model::Sensitive;
use crate::pki::x509;

/// Why a CSR could not be signed. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The CSR does not parse or its signature is wrong.
    #[error("cannot read the CSR: {0}")]
    Csr(String),
    /// The signing CA's certificate does not parse or is not a CA.
    #[error("the signing CA certificate: {0}")]
    CaCert(String),
    /// The CA key does not parse or does not match the certificate.
    #[error("the signing CA key: {0}")]
    Key(String),
    /// The requested lifetime does not fit the signing CA.
    #[error(
        "the intermediate would outlive its signing CA (asked until {asked}, the CA ends at {ca_end}, Unix seconds); shorten ttl or renew the CA"
    )]
    Lifetime {
        /// Requested notAfter.
        asked: i64,
        /// The CA's notAfter.
        ca_end: i64,
    },
    /// rcgen failed to sign.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A signed intermediate.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedIntermediate {
    /// The new certificate (PEM).
    pub certificate_pem: String,
    /// The signing CA's certificate(s) (PEM), to send as the chain.
    pub chain_pem: String,
}

impl std::fmt::Debug for SignedIntermediate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Certificates are public, but keep logs short.
        f.debug_struct("SignedIntermediate").finish_non_exhaustive()
    }
}

/// Only the `CERTIFICATE` blocks of a PEM text, as text (a key pasted into a
/// certificate file by mistake is dropped).
pub fn certificate_blocks(pem: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let end = start + len + END.len();
        out.push(format!("{}\n", &rest[start..end]));
        rest = &rest[end..];
    }
    out
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Signs `csr_pem` as an intermediate CA with the CA of `ca_cert_pem` and
/// its key. `ttl` in seconds (default: until the CA's own end);
/// `max_path_length` `None` or negative: unlimited.
pub fn sign_intermediate_csr(
    csr_pem: &str,
    ca_cert_pem: &str,
    ca_key: &Sensitive,
    ttl: Option<u64>,
    max_path_length: Option<i32>,
) -> Result<SignedIntermediate, SignError> {
    let ca = x509::parse_pem(ca_cert_pem).map_err(|e| SignError::CaCert(e.to_string()))?;
    if !ca.is_ca {
        return Err(SignError::CaCert(
            "it is not a CA certificate (basicConstraints CA:false)".into(),
        ));
    }
    if ca.path_len == Some(0) {
        return Err(SignError::CaCert(
            "its path length is 0: it cannot sign another CA".into(),
        ));
    }
    let key = KeyPair::from_pem(ca_key.expose()).map_err(|_| {
        SignError::Key(
            "not a PKCS#8 PEM private key (BEGIN PRIVATE KEY); convert it with \
             `openssl pkcs8 -topk8 -nocrypt -in key.pem`"
                .into(),
        )
    })?;
    if !spki_matches(&ca.der, key.subject_public_key_info().as_slice()) {
        return Err(SignError::Key(
            "it does not belong to the CA certificate".into(),
        ));
    }
    let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|e| SignError::Csr(e.to_string()))?;

    let now = unix_now();
    let not_after = match ttl {
        Some(t) if t > 0 => now.saturating_add(t.min(i64::MAX as u64) as i64),
        _ => ca.not_after,
    };
    if not_after > ca.not_after {
        return Err(SignError::Lifetime {
            asked: not_after,
            ca_end: ca.not_after,
        });
    }
    // rcgen's time type at a Unix second, without naming the `time` crate.
    let time_at = |secs: i64| {
        rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(secs.max(0) as u64)
    };
    let p = &mut csr.params;
    p.not_before = time_at(now - 30);
    p.not_after = time_at(not_after);
    p.is_ca = match max_path_length {
        Some(n) if n >= 0 => IsCa::Ca(BasicConstraints::Constrained(n.min(255) as u8)),
        _ => IsCa::Ca(BasicConstraints::Unconstrained),
    };
    if let Some(parent) = ca.path_len {
        let wanted = max_path_length.filter(|n| *n >= 0).map(|n| n as u32);
        if wanted.is_none_or(|w| w >= parent) {
            // The parent constrains its children: pathLen must be smaller.
            p.is_ca = IsCa::Ca(BasicConstraints::Constrained(
                parent.saturating_sub(1).min(255) as u8,
            ));
        }
    }
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.extended_key_usages.clear();
    p.use_authority_key_identifier_extension = true;
    let mut serial = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| SignError::Sign("no randomness for the serial number".into()))?;
    serial[0] &= 0x7f;
    p.serial_number = Some(SerialNumber::from_slice(&serial));

    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, &key)
        .map_err(|e| SignError::CaCert(e.to_string()))?;
    let cert = csr
        .signed_by(&issuer)
        .map_err(|e| SignError::Sign(e.to_string()))?;
    Ok(SignedIntermediate {
        certificate_pem: cert.pem(),
        chain_pem: certificate_blocks(ca_cert_pem).concat(),
    })
}

/// Whether the certificate's public key is `spki`.
fn spki_matches(cert_der: &[u8], spki: &[u8]) -> bool {
    use x509_parser::prelude::*;
    X509Certificate::from_der(cert_der).is_ok_and(|(_, c)| c.public_key().raw == spki)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(path_len: Option<u8>, is_ca: bool) -> (String, KeyPair) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "Offline Root");
        p.is_ca = match (is_ca, path_len) {
            (false, _) => IsCa::NoCa,
            (true, Some(n)) => IsCa::Ca(BasicConstraints::Constrained(n)),
            (true, None) => IsCa::Ca(BasicConstraints::Unconstrained),
        };
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        p.not_after = rcgen::date_time_ymd(2060, 1, 1);
        (p.self_signed(&key).unwrap().pem(), key)
    }

    fn csr(cn: &str) -> String {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn signs_a_ca_with_the_path_length_asked() {
        let (cert, key) = ca(None, true);
        let secret = Sensitive::new(key.serialize_pem());
        let signed =
            sign_intermediate_csr(&csr("Int"), &cert, &secret, Some(86_400), Some(0)).unwrap();
        let info = x509::parse_pem(&signed.certificate_pem).unwrap();
        let root = x509::parse_pem(&cert).unwrap();
        assert_eq!(
            (info.common_name.as_str(), info.issued_by.as_str()),
            ("Int", "Offline Root")
        );
        assert!(info.is_ca);
        assert_eq!(info.path_len, Some(0));
        assert!((info.not_after - info.not_before - 86_400).abs() <= 60);
        assert!(x509::is_signed_by(&info.der, &root.der));
        assert_eq!(certificate_blocks(&signed.chain_pem).len(), 1);
        assert!(!format!("{signed:?}").contains("BEGIN"));
    }

    #[test]
    fn a_constrained_parent_lowers_the_child_path_length() {
        let (cert, key) = ca(Some(2), true);
        let secret = Sensitive::new(key.serialize_pem());
        let signed = sign_intermediate_csr(&csr("Int"), &cert, &secret, None, None).unwrap();
        assert_eq!(
            x509::parse_pem(&signed.certificate_pem).unwrap().path_len,
            Some(1)
        );
    }

    #[test]
    fn refuses_what_cannot_sign_and_never_shows_the_key() {
        let (cert, key) = ca(None, true);
        let secret = Sensitive::new(key.serialize_pem());
        let (leaf, leaf_key) = ca(None, false);
        let e = sign_intermediate_csr(
            &csr("x"),
            &leaf,
            &Sensitive::new(leaf_key.serialize_pem()),
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a CA"), "{e}");
        let (zero, zero_key) = ca(Some(0), true);
        let e = sign_intermediate_csr(
            &csr("x"),
            &zero,
            &Sensitive::new(zero_key.serialize_pem()),
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("path length is 0"), "{e}");
        let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let e = sign_intermediate_csr(
            &csr("x"),
            &cert,
            &Sensitive::new(other.serialize_pem()),
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not belong"), "{e}");
        let garbage = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIAbogusbogusbogus\n-----END EC PRIVATE KEY-----\n";
        let e = sign_intermediate_csr(
            &csr("x"),
            &cert,
            &Sensitive::new(garbage.into()),
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("PKCS#8"), "{e}");
        assert!(!format!("{e} {e:?}").contains("bogus"));
        let e = sign_intermediate_csr("not a csr", &cert, &secret, None, None).unwrap_err();
        assert!(e.to_string().contains("CSR"), "{e}");
        let e = sign_intermediate_csr(&csr("x"), &cert, &secret, Some(100 * 365 * 86_400), None)
            .unwrap_err();
        assert!(matches!(e, SignError::Lifetime { .. }), "{e}");
    }
}
