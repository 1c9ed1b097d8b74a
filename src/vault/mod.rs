//! The Vault/OpenBao provider: one descriptor per Vault kind ([`kinds`]),
//! connection and login ([`connect`]), requests built without I/O
//! ([`request`]) and sent ([`client`]), reading the live state
//! ([`observe()`]), converging it to a plan ([`apply()`]), what certplane
//! owns and prunes ([`prune`]), the apply lock every certplane writing to
//! the same Vault shares ([`lock`]), and the policy applying a repository
//! needs ([`needs`]).
//!
//! One [`Vault`] per run: one login, the token reused for every request.
//! Secret material (tokens, secret IDs, keys, PEM bundles, JWTs) is held in
//! [`crate::model::Sensitive`] and never reaches a log line or an error.

pub mod apply;
pub mod bundle;
pub mod client;
pub mod connect;
mod issuer;
pub mod kinds;
pub mod lock;
pub mod needs;
pub mod normalize;
pub mod observe;
pub mod prune;
pub mod request;

pub use apply::{
    Applied, ApplyError, ApplyEvent, ApplyOptions, ApplyReport, SecretSources, Waiting, apply,
    apply_with, secret_sources,
};
pub use client::{RequestCounts, Vault};
pub use connect::{AuthSettings, VaultSettings};
pub use observe::{observe, observe_one};

use crate::model::source::SourceError;

/// Why talking to Vault failed. Messages are one line, lowercase, and never
/// carry a secret.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Neither the operator nor the config names a Vault.
    #[error("no vault address: pass --vault-addr or export VAULT_ADDR (or BAO_ADDR)")]
    NoAddress,
    /// The address is not an http(s) URL.
    #[error(
        "invalid vault address {address:?}: {why}; write it like https://vault.example.com:8200"
    )]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        why: String,
    },
    /// No token anywhere.
    #[error(
        "no vault token: export VAULT_TOKEN (or BAO_TOKEN), log in with `bao login` (~/.vault-token), or choose a login with --vault-auth"
    )]
    NoToken,
    /// The token cannot be sent in an HTTP header.
    #[error(
        "the vault token from {from} contains characters that cannot be sent in a header (spaces, newlines inside, non-ASCII); check it"
    )]
    MalformedToken {
        /// Where it came from (never the token).
        from: String,
    },
    /// A setting from the environment does not parse.
    #[error("invalid {name}={value:?}: {why}")]
    InvalidSetting {
        /// The variable or config key.
        name: String,
        /// Its value (never a secret).
        value: String,
        /// What is wrong.
        why: String,
    },
    /// The operator's flags or variables do not make a valid setting.
    #[error("{message}")]
    OperatorSetting {
        /// What is wrong, naming the flag or variable.
        message: String,
    },
    /// The repository's `spec.vault` names another connection or login
    /// than the operator's.
    #[error("certplane.yaml: {message}; {hint}")]
    Conflict {
        /// What differs.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// A secret or file named by the config could not be read.
    #[error("cannot read {what}")]
    Source {
        /// What was being read (e.g. "the AppRole secret ID").
        what: String,
        /// Why.
        #[source]
        source: SourceError,
    },
    /// A TLS file (CA bundle, client certificate or key) could not be used.
    #[error("cannot use {path} for TLS to vault: {why}")]
    Tls {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the http client for vault: {cause}")]
    Client {
        /// The cause chain, flattened.
        cause: String,
    },
    /// No connection (refused, DNS, TLS handshake).
    #[error("cannot reach vault at {addr}: {cause}")]
    Unreachable {
        /// The Vault address.
        addr: String,
        /// The cause chain, flattened into one line.
        cause: String,
    },
    /// No TCP/TLS connection within the connect timeout (a firewall
    /// dropping packets, a wrong address, a host that is down).
    #[error(
        "cannot reach vault at {addr}: no connection within {} (the connect timeout); check the address, that vault listens there, and firewalls between",
        secs(*after)
    )]
    ConnectTimeout {
        /// The Vault address.
        addr: String,
        /// The connect timeout that fired.
        after: std::time::Duration,
    },
    /// Connected, but Vault did not answer one request in time.
    #[error(
        "vault at {addr} did not answer {op} {path} within {} (the request timeout; set CERTPLANE_VAULT_TIMEOUT to wait longer)",
        secs(*after)
    )]
    Timeout {
        /// The Vault address.
        addr: String,
        /// The operation.
        op: &'static str,
        /// The API path.
        path: String,
        /// The request timeout that fired.
        after: std::time::Duration,
    },
    /// Vault kept answering "busy" (429, 502, 503, 504) to a call that is
    /// safe to repeat, every attempt.
    #[error(
        "vault answered {status} to {op} {path} {attempts} times (busy or rate-limited): {message}; try again later"
    )]
    Busy {
        /// The operation.
        op: &'static str,
        /// The API path.
        path: String,
        /// The last HTTP status.
        status: u16,
        /// How many times the call was sent.
        attempts: u32,
        /// Vault's errors (secrets of the request removed).
        message: String,
    },
    /// Vault is sealed.
    #[error("vault at {addr} is sealed; unseal it (bao operator unseal) and run again")]
    Sealed {
        /// The Vault address.
        addr: String,
    },
    /// Vault is not initialised.
    #[error("vault at {addr} is not initialized; initialize it (bao operator init) and run again")]
    Uninitialized {
        /// The Vault address.
        addr: String,
    },
    /// The token is rejected.
    #[error(
        "vault token invalid or expired (from {from}); log in again (bao login) or export a valid VAULT_TOKEN"
    )]
    TokenInvalid {
        /// Where the token came from (never the token).
        from: String,
    },
    /// Vault refused the token itself during the run (revoked, expired, or
    /// never valid): not a policy problem.
    #[error(
        "vault rejected the token (from {from}) on {op} {path}: the token is invalid, expired or revoked, not short of a policy (vault refuses it even auth/token/lookup-self, which the default policy grants every token); log in again or provide a valid token"
    )]
    TokenRejected {
        /// The operation.
        op: &'static str,
        /// The API path.
        path: String,
        /// Where the token came from (never the token).
        from: String,
    },
    /// A login call was refused.
    #[error("{method} login at {path} failed ({status}): {message}")]
    LoginFailed {
        /// `approle`, `jwt`, `kubernetes` or `cert`.
        method: &'static str,
        /// The login path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Vault's errors (secrets of the request removed).
        message: String,
    },
    /// The token's policies do not allow the call.
    #[error(
        "permission denied: {op} {path}; the token's policy must grant {capability:?} on path \"{path}\" (see the policy certplane needs)"
    )]
    PermissionDenied {
        /// The operation.
        op: &'static str,
        /// The API path.
        path: String,
        /// The capability needed.
        capability: &'static str,
    },
    /// Vault refused the call.
    #[error("vault answered {status} to {op} {path}: {message}")]
    Api {
        /// The operation.
        op: &'static str,
        /// The API path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Vault's errors (secrets of the request removed).
        message: String,
    },
    /// Vault's reply does not have the expected shape.
    #[error("unexpected reply from vault to {op} {path}: {why}")]
    BadReply {
        /// The operation.
        op: &'static str,
        /// The API path.
        path: String,
        /// What was wrong.
        why: String,
    },
}

/// A duration for a message: `5s`, `1.5s`, `250ms`.
fn secs(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Every cause of an error, joined into one line (`a: b: c`), a cause
/// already said not repeated. Transport errors hide the useful part
/// (connection refused, certificate unknown) in their sources. The one
/// flattener of error chains: the CLI's error lines, logs and `verify` call
/// it.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);
    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Inner;

    #[test]
    fn chain_is_one_line_with_every_cause() {
        assert_eq!(error_chain(&Outer(Inner)), "outer: connection refused");
    }

    #[test]
    fn timeouts_name_which_one_fired_and_its_value() {
        let e = VaultError::ConnectTimeout {
            addr: "http://v:1".into(),
            after: std::time::Duration::from_secs(5),
        };
        assert!(
            e.to_string().contains("within 5s (the connect timeout)"),
            "{e}"
        );
        let e = VaultError::Timeout {
            addr: "http://v:1".into(),
            op: "read",
            path: "sys/mounts".into(),
            after: std::time::Duration::from_millis(1500),
        };
        assert!(
            e.to_string().contains("within 1.5s (the request timeout"),
            "{e}"
        );
        assert_eq!(secs(std::time::Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn messages_name_the_address_and_the_fix() {
        let e = VaultError::Sealed {
            addr: "http://127.0.0.1:8200".into(),
        };
        assert_eq!(
            e.to_string(),
            "vault at http://127.0.0.1:8200 is sealed; unseal it (bao operator unseal) and run again"
        );
        let e = VaultError::PermissionDenied {
            op: "write",
            path: "pki/roles/web".into(),
            capability: "update",
        };
        assert!(e.to_string().contains("pki/roles/web"), "{e}");
        assert!(e.to_string().contains("policy"), "{e}");
    }
}
