//! `certplane status`: the live PKI as a tree, read-only.
//!
//! The repository is prepared as for `plan` (load, expand, validate), Vault
//! is reached through the same session (the operator's connection, one
//! login), then [`live::observe`] reads, for each declared `PkiMount`, its
//! issuers, default issuer and keys (`GET` and `LIST` only: nothing is
//! written, no lock is taken). [`tree::build`] links each issuer to the one
//! that signed it (its authorityKeyIdentifier is the parent's
//! subjectKeyIdentifier; else the hierarchy the repository declares) and
//! hangs under it the mounts it signed and the cert-manager Issuers and
//! Certificates of the repository that sign through it (by their Vault sign
//! path). [`render`] prints the tree for people, as JSON, Mermaid or
//! Graphviz. A CA in use inside its `rotateBefore` window, or expired, is
//! an [`tree::Alert`]: the command exits 1.

pub mod live;
pub mod render;
pub mod tree;

pub use live::{LivePki, observe};
pub use tree::{Alert, Health, Status, build, mount_paths};
