//! X.509 work done in-process: reading certificates (path length, lifetime,
//! key) and signing an intermediate's CSR with an external CA key.

pub mod sign;
pub mod x509;
