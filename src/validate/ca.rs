//! What validation knows of a CA: its lifetime, path length and CA flag,
//! from the declaration (a generated root or intermediate) or from a PEM
//! certificate (an imported bundle, an external signer). Certificates are
//! read, never printed; a bundle's private key is never looked at.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::source::SourceError;
use crate::model::{Duration, Source};
use crate::pki::x509::{CertError, CertInfo, parse_pem};

/// A problem reading a CA certificate the repository names.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text holds no readable certificate.
    #[error("{what} does not hold a readable certificate: {source}")]
    Parse {
        /// The file or bundle, as the message names it.
        what: String,
        /// Why.
        #[source]
        source: CertError,
    },
    /// The CA certificate has expired.
    #[error("{what}: the CA certificate {common_name:?} has expired")]
    Expired {
        /// The file or bundle, as the message names it.
        what: String,
        /// The certificate's common name.
        common_name: String,
    },
    /// An import bundle's source cannot be read.
    #[error("cannot read the CA bundle: {source}")]
    Bundle {
        /// The environment variable, when the source is one.
        env: Option<String>,
        /// Why.
        #[source]
        source: SourceError,
    },
    /// An import bundle's certificate is not a CA.
    #[error("the certificate of the CA bundle ({what}) is not a CA (basicConstraints CA:FALSE)")]
    NotCa {
        /// The bundle's source, described.
        what: String,
    },
}

impl CaError {
    /// How to fix it.
    pub fn hint(&self) -> String {
        match self {
            CaError::Read { .. } | CaError::Bundle { env: None, .. } => {
                "paths are relative to the YAML file that names them".to_string()
            }
            CaError::Parse { .. } => {
                "give a PEM file with a -----BEGIN CERTIFICATE----- block".to_string()
            }
            CaError::Expired { .. } => "renew the CA certificate".to_string(),
            CaError::Bundle {
                env: Some(name), ..
            } => {
                format!("export {name} with the PEM bundle before running certplane")
            }
            CaError::NotCa { .. } => "import a CA certificate with its key".to_string(),
        }
    }
}

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

fn parse(text: &str, what: &str) -> Result<CertInfo, CaError> {
    parse_pem(text).map_err(|source| CaError::Parse {
        what: what.to_string(),
        source,
    })
}

fn check_ca(info: &CertInfo, what: &str) -> Result<CaFacts, CaError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if info.not_after <= now {
        return Err(CaError::Expired {
            what: what.to_string(),
            common_name: info.common_name.clone(),
        });
    }
    Ok(CaFacts::from_cert(info))
}

/// The certificate of a file (any certificate, e.g. a server CA).
pub fn read_any_cert(path: &Path) -> Result<CertInfo, CaError> {
    let text = std::fs::read_to_string(path).map_err(|source| CaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// The CA certificate of a file (an external signer's `caCertFile`, or a
/// manually signed intermediate).
pub fn read_cert_file(path: &Path) -> Result<CaFacts, CaError> {
    let info = read_any_cert(path)?;
    check_ca(&info, &path.display().to_string())
}

/// The CA certificate of an import bundle (only `file` and `env` sources are
/// read here). The bundle's text is dropped as soon as its first
/// certificate is parsed.
pub fn read_import(source: &Source) -> Result<CaFacts, CaError> {
    if matches!(source, Source::Value(_)) {
        return Ok(CaFacts::none());
    }
    let what = source.describe();
    let text = source.read().map_err(|e| CaError::Bundle {
        env: match source {
            Source::Env(name) => Some(name.clone()),
            _ => None,
        },
        source: e,
    })?;
    let info = parse(text.expose(), &format!("the CA bundle ({what})"))?;
    drop(text);
    if !info.is_ca {
        return Err(CaError::NotCa { what });
    }
    check_ca(&info, &format!("the CA bundle ({what})"))
}
