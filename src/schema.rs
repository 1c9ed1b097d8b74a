//! JSON Schemas of every certplane kind, generated from the Rust types.
