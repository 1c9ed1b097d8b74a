//! One Vault login for the life of the loop: the token's TTL is looked up
//! after login, the token is renewed (`renew-self`) once two thirds of its
//! TTL have passed, and certplane logs in again only when it expired, cannot
//! be renewed, or renewal failed.

use std::time::{Duration, Instant};

use crate::model::Repository;
use crate::model::config::VaultTarget;
use crate::vault::client::TokenInfo;
use crate::vault::{Vault, VaultError};

use super::metrics::Shared;

/// How long to wait before retrying a renewal Vault did not answer.
const RETRY: Duration = Duration::from_secs(2);

/// A logged-in Vault and its token's schedule.
#[derive(Debug)]
pub struct Session {
    vault: Vault,
    /// The `spec.vault` it was made for: another one needs another login.
    target: Option<VaultTarget>,
    /// When to renew (`None`: the token never expires).
    renew_at: Option<Instant>,
    /// When the token expires.
    expires_at: Option<Instant>,
    renewable: bool,
}

fn target_of(repo: &Repository) -> Option<VaultTarget> {
    repo.config.as_ref().and_then(|c| c.spec.vault.clone())
}

impl Session {
    /// Logs in with the repository's settings (the pipeline's `connect`) and
    /// looks up the token's TTL.
    pub async fn open(repo: &Repository, status: &Shared) -> Result<Session, VaultError> {
        let vault = crate::pipeline::connect(repo).await?;
        let logins = vault.requests_made().logins;
        if let Ok(mut s) = status.lock() {
            s.vault_logins_total += logins;
        }
        let info = vault.token_info().await?;
        let mut session = Session {
            vault,
            target: target_of(repo),
            renew_at: None,
            expires_at: None,
            renewable: false,
        };
        session.schedule(info);
        tracing::info!(
            ttl_secs = info.ttl,
            renewable = info.renewable,
            "vault session started"
        );
        Ok(session)
    }

    fn schedule(&mut self, info: TokenInfo) {
        let now = Instant::now();
        self.renewable = info.renewable;
        match info.ttl {
            Some(ttl) => {
                self.expires_at = Some(now + Duration::from_secs(ttl));
                self.renew_at = Some(now + Duration::from_millis(ttl * 2000 / 3));
            }
            None => {
                self.expires_at = None;
                self.renew_at = None;
            }
        }
    }

    /// The Vault client.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// When the token next needs attention.
    pub fn renew_at(&self) -> Option<Instant> {
        self.renew_at
    }

    /// Whether this session was made for `repo`'s Vault settings.
    pub fn serves(&self, repo: &Repository) -> bool {
        self.target == target_of(repo)
    }

    /// Renews the token when due. `Ok(false)`: it must be replaced by a new
    /// login (expired, not renewable, or renewal refused).
    pub async fn maintain(&mut self, status: &Shared) -> Result<bool, VaultError> {
        let now = Instant::now();
        if self.renew_at.is_none_or(|t| now < t) {
            return Ok(true);
        }
        if self.expires_at.is_some_and(|t| now >= t) || !self.renewable {
            tracing::info!("vault token expired or not renewable: logging in again");
            return Ok(false);
        }
        match self.vault.renew_self().await {
            Ok(info) => {
                if let Ok(mut s) = status.lock() {
                    s.vault_token_renewals_total += 1;
                }
                tracing::info!(ttl_secs = info.ttl, "vault token renewed");
                self.schedule(info);
                Ok(true)
            }
            Err(
                e @ (VaultError::Unreachable { .. }
                | VaultError::ConnectTimeout { .. }
                | VaultError::Timeout { .. }
                | VaultError::Busy { .. }),
            ) => {
                // Vault is away: try again in a while, not in a tight loop.
                self.renew_at = Some(now + RETRY);
                Err(e)
            }
            Err(e) => {
                tracing::warn!(error = %e, "vault token renewal failed: logging in again");
                Ok(false)
            }
        }
    }

    /// Whether the token still works (after a permission error: a dead token
    /// needs a new login, a policy problem does not).
    pub async fn alive(&self) -> bool {
        self.vault.token_info().await.is_ok()
    }
}
