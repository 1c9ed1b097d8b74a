//! certplane: a declarative GitOps reconciler for Vault/OpenBao PKI and the
//! cert-manager objects that use it.
//!
//! The one pipeline, run by one driver ([`pipeline::Driver`]) in every
//! mode, one module per step:
//! [`load`] (files -> typed [`model`]) -> [`expand`] (a VaultIssuer or a
//! reviewer ServiceAccount -> the objects it stands for) -> [`validate`]
//! (offline cross-checks, each problem a [`diagnostic::Diagnostic`]) ->
//! [`desired`] (model -> desired [`state`]) -> observe -> [`plan`] (pure
//! diff) -> lock -> apply -> prune -> [`verify`] (each Vault Issuer checked
//! as cert-manager uses it). The driver owns the Vault session
//! ([`pipeline::session`]: renewal, a new login when the token expired or
//! was revoked) and returns a [`pipeline::StepError`] naming the step that
//! failed.
//!
//! The targets are providers behind one trait ([`pipeline::Provider`]:
//! observe, plan, apply, prune): Vault ([`pipeline::vault`] over
//! [`vault`], one descriptor per kind in [`vault::kinds`]), a live cluster
//! ([`cluster::live`]) and rendered files ([`cluster::render`]); the secrets
//! that cross between Vault and the cluster live in [`cluster::deliver`],
//! [`cluster::deliver_key`] and [`cluster::reviewer`]. [`cli`] is one
//! function per mode (a call to the driver plus printing); [`run`] (pull
//! loop with [`run::lease`] election) and `watch` decide when.
//! [`vault::needs`] is the Vault policy a repository needs; [`pki`] holds
//! the X.509 work. [`operator`] holds what whoever runs certplane decides and
//! the repository cannot (the Vault connection, readable environment
//! variables). [`model::schema`] generates the JSON Schemas of the kinds.

pub mod addr;
pub mod cli;
pub mod cluster;
pub mod desired;
pub mod diagnostic;
pub mod expand;
pub mod load;
pub mod model;
pub mod operator;
pub mod pipeline;
pub mod pki;
pub mod plan;
pub mod run;
pub mod state;
pub mod status;
pub mod validate;
pub mod vault;
pub mod verify;
