//! The one pipeline every mode runs, and its driver.
//!
//! ```text
//! load -> expand -> validate -> lower -> observe -> plan -> lock -> apply -> prune -> verify
//! ```
//!
//! * [`Driver`] runs the steps up to the one a mode asks for and returns a
//!   [`StepError`] naming the [`Step`] that failed. It owns the Vault
//!   [`session`] (login, token lookup, renewal at two thirds of the TTL, a
//!   new login when the token expired or was revoked, a new connection when
//!   the settings changed) and the cluster connection, across runs (`watch`
//!   and `run` keep one driver for their life).
//! * [`mod@prepare`]: the offline steps (nothing touches the network).
//! * [`provider`]: the targets behind one trait — observe, plan (pure),
//!   apply (re-checking each change against the live state), prune —
//!   implemented by Vault ([`vault`]), a live cluster
//!   ([`crate::cluster::live`]) and rendered files
//!   ([`crate::cluster::render`]); [`targets`] decides which a repository
//!   has.
//! * [`mod@plan`] and [`mod@apply`]: the steps over every target, in the order
//!   they depend on each other; [`apply_locked`] applies under the apply
//!   lock a plan made again under it.
//! * [`hash`]: the repository's input, hashed (saved plans, `watch`, drift).
//! * [`drift`]: what certplane can honestly call drift (changed outside
//!   certplane since it applied it), and how it knows.
//!
//! `validate`, `plan`, `apply`, `apply FILE`, `watch`, `run`, `verify` and
//! `force-unlock` are each a call to the driver plus printing (and, for
//! `run`, metrics).

pub mod apply;
pub mod drift;
pub mod driver;
pub mod error;
pub mod hash;
pub mod plan;
pub mod prepare;
pub mod provider;
pub mod session;
pub mod targets;
pub mod vault;
pub mod verify;

pub use apply::{Applied, Approval, LockedApply, Locking, apply, apply_locked};
pub use driver::{Driver, DriverSettings};
pub use error::{Failure, Step, StepError};
pub use plan::{observe_and_plan, plan};
pub use prepare::{
    PrepareOptions, Prepared, load_checked, prepare, prepare_for, prepare_with, prepare_with_live,
};
pub use provider::{
    ApplyInput, Observation, OnEvent, PlanInput, PlanOptions, Provider, ProviderError, SecretStore,
};
pub use session::{Session, SessionError, SessionStats};
pub use targets::{Targets, needs_vault};
