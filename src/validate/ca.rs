//! What validation knows of a CA: its lifetime, path length and CA flag,
//! from the declaration (a generated root or intermediate) or from a PEM
//! certificate (an imported bundle, an external signer). Certificates are
//! read, never printed; a bundle's private key is never looked at.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::{Duration, Source};
use crate::pki::x509::{CertInfo, parse_pem};

/// A problem reading a certificate: (message, hint).
pub type CertProblem = (String, String);

/// The facts of one CA.
#[derive(Clone, Debug, PartialEq)]
pub struct CaFacts {
    /// Lifetime in seconds and what it is (`CA ttl`, `CA certificate's
    /// remaining lifetime`); `None` when unknown.
    pub lifetime: Option<(u64, &'static str)>,
    /// basicConstraints pathLen; `None`: unlimited or unknown.
    pub path_len: Option<u32>,
    /// Whether it may sign certificates at all.
    pub is_ca: bool,
}

impl CaFacts {
    /// No CA known (none declared, or it could not be read).
    pub fn none() -> Self {
        CaFacts {
            lifetime: None,
            path_len: None,
            is_ca: true,
        }
    }

    /// A CA generated in Vault from its declaration.
    pub fn generated(ttl: Option<Duration>, max_path_length: Option<i32>) -> Self {
        CaFacts {
            lifetime: ttl.map(|t| (t.as_secs(), "CA ttl")),
            path_len: max_path_length.and_then(|n| u32::try_from(n).ok()),
            is_ca: true,
        }
    }

    /// The lifetime with its description, when known.
    pub fn lifetime_desc(&self) -> Option<(u64, &'static str)> {
        self.lifetime
    }

    fn from_cert(info: &CertInfo) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let remaining = u64::try_from(info.not_after.saturating_sub(now)).unwrap_or(0);
        CaFacts {
            lifetime: Some((remaining, "CA certificate's remaining lifetime")),
            path_len: info.path_len,
            is_ca: info.is_ca,
        }
    }
}

fn parse(text: &str, what: &str) -> Result<CertInfo, CertProblem> {
    parse_pem(text).map_err(|e| {
        (
            format!("{what} does not hold a readable certificate: {e}"),
            "give a PEM file with a -----BEGIN CERTIFICATE----- block".to_string(),
        )
    })
}

fn check_ca(info: &CertInfo, what: &str) -> Result<CaFacts, CertProblem> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if info.not_after <= now {
        return Err((
            format!(
                "{what}: the CA certificate {:?} has expired",
                info.common_name
            ),
            "renew the CA certificate".to_string(),
        ));
    }
    Ok(CaFacts::from_cert(info))
}

/// The certificate of a file (any certificate, e.g. a server CA).
pub fn read_any_cert(path: &Path) -> Result<CertInfo, CertProblem> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        (
            format!("cannot read {}: {e}", path.display()),
            "paths are relative to the YAML file that names them".to_string(),
        )
    })?;
    parse(&text, &path.display().to_string())
}

/// The CA certificate of a file (an external signer's `caCertFile`, or a
/// manually signed intermediate).
pub fn read_cert_file(path: &Path) -> Result<CaFacts, CertProblem> {
    let info = read_any_cert(path)?;
    check_ca(&info, &path.display().to_string())
}

/// The CA certificate of an import bundle (only `file` and `env` sources are
/// read here). The bundle's text is dropped as soon as its first
/// certificate is parsed.
pub fn read_import(source: &Source) -> Result<CaFacts, CertProblem> {
    if matches!(source, Source::Value(_)) {
        return Ok(CaFacts::none());
    }
    let what = source.describe();
    let text = source.read().map_err(|e| {
        let hint = match source {
            Source::Env(name) => {
                format!("export {name} with the PEM bundle before running certplane")
            }
            _ => "paths are relative to the YAML file that names them".to_string(),
        };
        (format!("cannot read the CA bundle: {e}"), hint)
    })?;
    let info = parse(text.expose(), &format!("the CA bundle ({what})"))?;
    drop(text);
    if !info.is_ca {
        return Err((
            format!(
                "the certificate of the CA bundle ({what}) is not a CA (basicConstraints CA:FALSE)"
            ),
            "import a CA certificate with its key".to_string(),
        ));
    }
    check_ca(&info, &format!("the CA bundle ({what})"))
}
