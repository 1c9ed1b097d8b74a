//! Loading: a directory tree of YAML -> a typed [`Repository`](crate::model::Repository).
