//! certplane: a declarative GitOps reconciler for Vault/OpenBao PKI and the
//! cert-manager objects that use it.
//!
//! The pipeline, one module per step:
//! [`load`] (files -> typed [`model`]) -> [`validate`] (offline cross-checks)
//! -> [`desired`] (model -> desired [`state`]) -> [`vault::observe`] (live
//! state) -> [`plan`] (pure diff) -> [`vault::apply`] (converge).
//! [`cli`] wires the steps into commands; [`pki`] holds the X.509 work.

pub mod addr;
pub mod cluster;
pub mod cli;
pub mod deliver;
pub mod desired;
pub mod diagnostic;
pub mod expand;
pub mod lease;
pub mod load;
pub mod model;
pub mod pki;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod run;
pub mod schema;
pub mod state;
pub mod validate;
pub mod vault;
pub mod verify;
