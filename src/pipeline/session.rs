//! The one Vault session of a process: every mode gets its [`Vault`] here.
//!
//! * **Login**: [`crate::vault::Vault::connect`] with the settings of the
//!   run (the operator's, filled in by the repository where allowed), then a
//!   token lookup for its TTL.
//! * **Renewal**: once two thirds of the TTL have passed, the token is
//!   renewed (`renew-self`); the schedule follows the TTL Vault returns.
//! * **Re-login**: a token that expired, could not be renewed, is not
//!   renewable, or turns out dead after a refused call (revoked) is replaced
//!   by a new login. A login method (AppRole, JWT, Kubernetes, certificate)
//!   logs in again; a token given as such (`VAULT_TOKEN`, a token file)
//!   cannot be re-obtained: its source is read again (a token file an agent
//!   rewrites gives the new token), and when it still holds the dead token
//!   the error says the token expired ([`SessionError::TokenGone`]) instead
//!   of a misleading "permission denied".
//! * **Reconnect**: settings that differ from the session's (a new commit's
//!   `certplane.yaml`, another operator setting) mean another login.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::vault::client::TokenInfo;
use crate::vault::{AuthSettings, Vault, VaultError, VaultSettings};

/// How long to wait before retrying a renewal Vault did not answer.
const RETRY: Duration = Duration::from_secs(2);

/// Why there is no usable Vault session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Connecting, logging in or looking the token up failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The token given to certplane (not obtained by a login) expired or
    /// was revoked, and its source still holds it: certplane cannot get
    /// another one by itself.
    #[error(
        "the vault token from {from} {state}; certplane cannot obtain a new token from a token it was \
         given: provide a new one (e.g. export VAULT_TOKEN again) and start again, or let certplane \
         log in by itself (--vault-auth approle, jwt or kubernetes), which renews the token and logs \
         in again as needed"
    )]
    TokenGone {
        /// Where the token came from (never the token).
        from: String,
        /// "expired" or "is no longer valid (revoked or expired)".
        state: &'static str,
    },
}

/// Logins and renewals a session made (for `run`'s metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Login calls (none for a token given as such).
    pub logins: u64,
    /// Successful token renewals.
    pub renewals: u64,
}

/// When the token of a live session needs attention.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Schedule {
    /// When to renew (`None`: the token never expires).
    renew_at: Option<Instant>,
    /// When the token expires.
    expires_at: Option<Instant>,
    /// Whether `renew-self` can extend it.
    renewable: bool,
}

impl Schedule {
    /// Renew at two thirds of `info.ttl` from `now`. A token that cannot be
    /// renewed is replaced then by a new login when the session can log in
    /// (`relogin`), else kept until it expires.
    fn from_info(info: TokenInfo, now: Instant, relogin: bool) -> Schedule {
        match info.ttl {
            Some(ttl) => {
                let expires_at = now + Duration::from_secs(ttl);
                let renew_at = if info.renewable || relogin {
                    now + Duration::from_millis(ttl * 2000 / 3)
                } else {
                    expires_at
                };
                Schedule {
                    renew_at: Some(renew_at),
                    expires_at: Some(expires_at),
                    renewable: info.renewable,
                }
            }
            None => Schedule {
                renewable: info.renewable,
                ..Schedule::default()
            },
        }
    }

    /// What to do with the token at `now`.
    fn due(&self, now: Instant) -> Due {
        if self.renew_at.is_none_or(|t| now < t) {
            Due::Nothing
        } else if self.expires_at.is_some_and(|t| now >= t) {
            Due::Expired
        } else if !self.renewable {
            Due::NotRenewable
        } else {
            Due::Renew
        }
    }
}

/// What a token needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    /// It is fine for now.
    Nothing,
    /// Renew it.
    Renew,
    /// It cannot be renewed and its end is near: log in again.
    NotRenewable,
    /// Its TTL ran out.
    Expired,
}

/// A logged-in Vault and its token's schedule.
#[derive(Debug)]
struct Live {
    vault: Arc<Vault>,
    settings: VaultSettings,
    schedule: Schedule,
}

/// The Vault session: at most one logged-in Vault at a time, kept alive
/// across runs of the pipeline (`watch`, `run`).
#[derive(Debug, Default)]
pub struct Session {
    live: Option<Live>,
    /// The settings of the last token that died, and how: a token given as
    /// such that is read again and still refused is reported as gone.
    gone: Option<(VaultSettings, &'static str)>,
    stats: SessionStats,
}

/// Whether the settings log in with a token given as such (nothing to log
/// in again with).
fn given_token(settings: &VaultSettings) -> Option<String> {
    match &settings.auth {
        AuthSettings::Token { token } => Some(token.describe()),
        _ => None,
    }
}

impl Session {
    /// A session with no login yet.
    pub fn new() -> Session {
        Session::default()
    }

    /// Logins and renewals so far.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// When the token next needs attention ([`Session::keep_alive`]);
    /// `None` without a session or for a token that never expires.
    pub fn renew_at(&self) -> Option<Instant> {
        self.live.as_ref().and_then(|l| l.schedule.renew_at)
    }

    /// The Vault for `settings`: the session's when it was made for them and
    /// its token is alive (renewed when due), else a new login.
    pub async fn vault(&mut self, settings: &VaultSettings) -> Result<Arc<Vault>, SessionError> {
        if let Some(live) = &self.live
            && live.settings != *settings
        {
            tracing::info!("the vault settings changed: logging in again");
            self.live = None;
        }
        if self.live.is_some() {
            self.keep_alive().await?;
        }
        if let Some(live) = &self.live {
            return Ok(live.vault.clone());
        }
        self.open(settings).await
    }

    /// Renews the token when it is due; drops a token that expired or cannot
    /// be renewed (the next [`Session::vault`] logs in again). Vault not
    /// answering a renewal is an error, retried a little later.
    pub async fn keep_alive(&mut self) -> Result<(), SessionError> {
        let Some(live) = self.live.as_mut() else {
            return Ok(());
        };
        let now = Instant::now();
        match live.schedule.due(now) {
            Due::Nothing => Ok(()),
            Due::Expired => {
                tracing::info!("vault token expired: logging in again");
                self.drop_token("expired");
                Ok(())
            }
            Due::NotRenewable => {
                tracing::info!("vault token cannot be renewed and ends soon: logging in again");
                self.drop_token("expired");
                Ok(())
            }
            Due::Renew => match live.vault.renew_self().await {
                Ok(info) => {
                    self.stats.renewals += 1;
                    tracing::info!(ttl_secs = info.ttl, "vault token renewed");
                    let relogin = given_token(&live.settings).is_none();
                    live.schedule = Schedule::from_info(info, Instant::now(), relogin);
                    Ok(())
                }
                Err(
                    e @ (VaultError::Unreachable { .. }
                    | VaultError::ConnectTimeout { .. }
                    | VaultError::Timeout { .. }
                    | VaultError::Busy { .. }),
                ) => {
                    // Vault is away: try again in a while, not in a tight loop.
                    live.schedule.renew_at = Some(now + RETRY);
                    Err(e.into())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "vault token renewal failed: logging in again");
                    self.drop_token("is no longer valid (revoked or expired)");
                    Ok(())
                }
            },
        }
    }

    /// After a refused call: whether the token died (revoked, expired). A
    /// dead token is dropped, so the next [`Session::vault`] logs in again;
    /// a policy problem keeps it.
    pub async fn token_died(&mut self, err: &VaultError) -> bool {
        if !matches!(
            err,
            VaultError::PermissionDenied { .. }
                | VaultError::TokenInvalid { .. }
                | VaultError::TokenRejected { .. }
        ) {
            return false;
        }
        let Some(live) = &self.live else {
            return false;
        };
        if live.vault.token_info().await.is_ok() {
            return false;
        }
        tracing::warn!("the vault token no longer works: logging in again");
        self.drop_token("is no longer valid (revoked or expired)");
        true
    }

    fn drop_token(&mut self, state: &'static str) {
        if let Some(live) = self.live.take() {
            self.gone = Some((live.settings, state));
        }
    }

    /// Logs in and looks up the token's TTL.
    async fn open(&mut self, settings: &VaultSettings) -> Result<Arc<Vault>, SessionError> {
        let connected = Vault::connect(settings).await;
        let vault = match connected {
            Ok(v) => v,
            Err(VaultError::TokenInvalid { from }) => {
                return Err(match &self.gone {
                    Some((s, state)) if s == settings => SessionError::TokenGone { from, state },
                    _ => VaultError::TokenInvalid { from }.into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        self.stats.logins += vault.requests_made().logins;
        let info = vault.token_info().await?;
        tracing::info!(
            address = %settings.address,
            ttl_secs = info.ttl,
            renewable = info.renewable,
            "vault session started"
        );
        let vault = Arc::new(vault);
        self.gone = None;
        self.live = Some(Live {
            vault: vault.clone(),
            settings: settings.clone(),
            schedule: Schedule::from_info(info, Instant::now(), given_token(settings).is_none()),
        });
        Ok(vault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(ttl: Option<u64>, renewable: bool) -> TokenInfo {
        TokenInfo { ttl, renewable }
    }

    #[test]
    fn a_token_is_renewed_at_two_thirds_of_its_ttl() {
        let t0 = Instant::now();
        let s = Schedule::from_info(info(Some(30), true), t0, false);
        assert_eq!(s.renew_at, Some(t0 + Duration::from_secs(20)));
        assert_eq!(s.expires_at, Some(t0 + Duration::from_secs(30)));
        assert_eq!(s.due(t0 + Duration::from_secs(19)), Due::Nothing);
        assert_eq!(s.due(t0 + Duration::from_secs(20)), Due::Renew);
        assert_eq!(s.due(t0 + Duration::from_secs(30)), Due::Expired);
    }

    #[test]
    fn a_token_that_cannot_be_renewed_is_replaced_before_it_ends() {
        let t0 = Instant::now();
        let s = Schedule::from_info(info(Some(3), false), t0, true);
        assert_eq!(s.due(t0 + Duration::from_secs(1)), Due::Nothing);
        assert_eq!(s.due(t0 + Duration::from_millis(2100)), Due::NotRenewable);
        assert_eq!(s.due(t0 + Duration::from_secs(4)), Due::Expired);
    }

    #[test]
    fn a_given_token_that_cannot_be_renewed_is_kept_until_it_expires() {
        let t0 = Instant::now();
        let s = Schedule::from_info(info(Some(3), false), t0, false);
        assert_eq!(s.renew_at, s.expires_at);
        assert_eq!(s.due(t0 + Duration::from_millis(2100)), Due::Nothing);
        assert_eq!(s.due(t0 + Duration::from_secs(3)), Due::Expired);
    }

    #[test]
    fn a_token_without_ttl_never_needs_attention() {
        let t0 = Instant::now();
        let s = Schedule::from_info(info(None, false), t0, true);
        assert_eq!(s.renew_at, None);
        assert_eq!(s.due(t0 + Duration::from_secs(86400 * 365)), Due::Nothing);
    }
}
