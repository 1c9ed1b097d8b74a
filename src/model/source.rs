//! Value sources: `{value: ...}`, `{env: NAME}`, `{file: path}`.
//!
//! Anything that can come from outside the repository (a CA key, a PEM bundle,
//! an AppRole secret ID, a CI OIDC token) is named by a [`Source`] and read
//! only when it is needed. The loader confines file sources to the
//! repository and env sources to what the operator allows
//! ([`crate::operator::EnvRules`]). What is read is wrapped in [`Sensitive`], whose
//! `Debug` and `Display` print `(sensitive)`, so a secret cannot reach a log
//! line or an error message by accident.

use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a value comes from. Exactly one of the three keys.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Source {
    /// The value itself, written in the repository (avoid for secrets).
    Value(String),
    /// The name of an environment variable of the certplane process that
    /// the operator allows (`CERTPLANE_VAR_*`, or `--allow-env`); never one
    /// of certplane's own credentials.
    Env(String),
    /// A file inside the repository, relative to the YAML file that names it.
    File(PathBuf),
}

/// Why a [`Source`] could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The environment variable is not set (or not valid UTF-8).
    #[error("environment variable {name} is not set; export it before running certplane")]
    EnvMissing {
        /// The variable's name.
        name: String,
    },
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Source {
    /// Reads the value. Relative file paths were made absolute (against the
    /// naming file's directory) by the loader, see [`Source::rebase`].
    pub fn read(&self) -> Result<Sensitive, SourceError> {
        match self {
            Source::Value(v) => Ok(Sensitive::new(v.clone())),
            Source::Env(name) => std::env::var(name)
                .map(Sensitive::new)
                .map_err(|_| SourceError::EnvMissing { name: name.clone() }),
            Source::File(path) => {
                std::fs::read_to_string(path)
                    .map(Sensitive::new)
                    .map_err(|source| SourceError::File {
                        path: path.clone(),
                        source,
                    })
            }
        }
    }

    /// Makes a relative `file` path relative to `dir` (the directory of the
    /// YAML file that names it).
    pub fn rebase(&mut self, dir: &Path) {
        if let Source::File(path) = self {
            rebase_path(path, dir);
        }
    }

    /// A description safe to print: never the value itself.
    pub fn describe(&self) -> String {
        match self {
            Source::Value(_) => "inline value".to_string(),
            Source::Env(name) => format!("env {name}"),
            Source::File(path) => format!("file {}", path.display()),
        }
    }
}

/// Makes `path` relative to `dir` unless it is absolute.
pub fn rebase_path(path: &mut PathBuf, dir: &Path) {
    if path.is_relative() {
        *path = dir.join(&*path);
    }
}

/// A secret read from a [`Source`]. Prints as `(sensitive)`; the value is
/// reachable only through [`Sensitive::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(String);

impl Sensitive {
    /// Wraps a secret.
    pub fn new(value: String) -> Self {
        Sensitive(value)
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl fmt::Display for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_never_prints_its_value() {
        let s = Sensitive::new("hvs.supersecret".into());
        assert_eq!(format!("{s} {s:?}"), "(sensitive) (sensitive)");
        assert_eq!(s.expose(), "hvs.supersecret");
    }

    #[test]
    fn rebase_keeps_absolute_paths() {
        let mut rel = Source::File("ca/root.pem".into());
        rel.rebase(Path::new("/repo/pki"));
        assert_eq!(rel, Source::File("/repo/pki/ca/root.pem".into()));
        let mut abs = Source::File("/etc/key.pem".into());
        abs.rebase(Path::new("/repo"));
        assert_eq!(abs, Source::File("/etc/key.pem".into()));
    }

    #[test]
    fn missing_env_names_the_variable() {
        let err = Source::Env("CERTPLANE_TEST_SURELY_UNSET_VAR".into())
            .read()
            .unwrap_err();
        assert!(err.to_string().contains("CERTPLANE_TEST_SURELY_UNSET_VAR"));
    }
}
