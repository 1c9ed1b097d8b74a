//! Shared helpers of the integration tests: a real OpenBao dev server per
//! test ([`openbao::OpenBao`]), and small builders.

#![allow(dead_code)] // Each test binary uses a different subset of the helpers.

pub mod openbao;

pub use openbao::OpenBao;
