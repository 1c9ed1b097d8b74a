//! CAs made with rcgen, and what tests look for in PEM texts.

/// A self-signed CA made with rcgen: `(certificate PEM, PKCS#8 key PEM)`.
pub fn rcgen_ca(common_name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = ca_params(common_name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// CA parameters: CN, unconstrained CA, cert/CRL signing, valid 2020-2045.
pub fn ca_params(common_name: &str) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    p
}

/// The base64 body lines of a PEM text (what must never be printed of a key).
pub fn pem_body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .map(str::to_string)
        .collect()
}

/// DER of the first certificate of a PEM text.
pub fn der(pem: &str) -> Vec<u8> {
    certplane::pki::x509::parse_pem(pem)
        .unwrap_or_else(|e| panic!("not a certificate ({e}): {pem}"))
        .der
}

/// Verifies a leaf (DER) the way a client that trusts `anchors` (PEM
/// bundle) does: a path of valid signatures from the leaf through
/// `chain` (PEM, the CA certificates the server presents) to a
/// certificate of `anchors`, every certificate on it valid at `now` (Unix
/// seconds). `Err` says why not.
pub fn verify_leaf(leaf: &[u8], chain: &str, anchors: &str, now: i64) -> Result<(), String> {
    use certplane::pki::x509::{is_signed_by, parse_der, pem_certificates};
    let anchors = pem_certificates(anchors).map_err(|e| format!("anchors: {e}"))?;
    let chain = pem_certificates(chain).unwrap_or_default();
    let valid = |der: &[u8]| {
        parse_der(der)
            .map(|i| i.not_before <= now && now < i.not_after)
            .unwrap_or(false)
    };
    if !valid(leaf) {
        return Err("the leaf is not valid now".into());
    }
    let mut at = leaf.to_vec();
    for _ in 0..4 {
        if let Some(_a) = anchors.iter().find(|a| valid(a) && is_signed_by(&at, a)) {
            return Ok(());
        }
        match chain
            .iter()
            .find(|c| c.as_slice() != at.as_slice() && valid(c) && is_signed_by(&at, c))
        {
            Some(next) => at = next.clone(),
            None => {
                let info = parse_der(&at).map_err(|e| e.to_string())?;
                return Err(format!(
                    "no valid trusted or presented certificate signed {:?} (issued by {:?})",
                    info.common_name, info.issued_by
                ));
            }
        }
    }
    Err("chain too long".into())
}
