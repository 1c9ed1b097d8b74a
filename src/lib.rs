//! certplane: a declarative GitOps reconciler for Vault/OpenBao PKI and the
//! cert-manager objects that use it.
//!
//! The one pipeline ([`pipeline`]), one module per step:
//! [`load`] (files -> typed [`model`]) -> [`expand`] (a VaultIssuer or a
//! reviewer ServiceAccount -> the objects it stands for) -> [`validate`]
//! (offline cross-checks, each problem a [`diagnostic::Diagnostic`]) ->
//! [`desired`] (model -> desired [`state`]) -> [`vault::observe()`] and
//! [`cluster`] dry runs (live state) -> [`plan`] (pure diff) ->
//! [`vault::apply()`], [`deliver`] and [`cluster::reconcile`] (converge).
//! [`cli`] decides how far to go and what to print; [`run`] (pull loop with
//! [`run::lease`] election) and `watch` decide when. [`verify`] checks issuers
//! the way cert-manager uses them; [`vault::needs`] is the Vault policy a
//! repository needs; [`pki`] holds the X.509 work. [`operator`] holds what
//! whoever runs certplane decides and the repository cannot (the Vault
//! connection, readable environment variables). [`model::schema`] generates
//! the JSON Schemas of the kinds.

pub mod addr;
pub mod cli;
pub mod cluster;
pub mod deliver;
pub mod deliver_key;
pub mod desired;
pub mod diagnostic;
pub mod expand;
pub mod load;
pub mod model;
pub mod operator;
pub mod pipeline;
pub mod pki;
pub mod plan;
pub mod reviewer;
pub mod run;
pub mod state;
pub mod validate;
pub mod vault;
pub mod verify;
