//! Kubeconfigs: the real test cluster's (`CERTPLANE_TEST_KUBECONFIG`, for
//! the `#[ignore]`d tests `make test-cluster` runs) and one written here
//! for a loopback server (a fake API server, or a port nothing answers).

use std::path::{Path, PathBuf};

/// The kubeconfig of the test cluster. The tests that need one are
/// `#[ignore]`d (reported as ignored, never as passed); `make test-cluster`
/// runs them with `--ignored`, and then a missing variable is a failure.
pub fn test_cluster_kubeconfig() -> PathBuf {
    match std::env::var_os("CERTPLANE_TEST_KUBECONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "CERTPLANE_TEST_KUBECONFIG is not set: it names the kubeconfig of a test cluster \
             (kind, k3d, ...) with the cert-manager CRDs; see `make test-cluster`"
        ),
    }
}

/// Writes `dir/kubeconfig`: one context `context` (default namespace
/// `sandbox`) for the server `http://127.0.0.1:<port>`, with a bearer
/// token that means nothing; its path.
pub fn loopback_kubeconfig(dir: &Path, context: &str, port: u16) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {context}\n\
             clusters:\n- name: {context}\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\n    namespace: sandbox\n\
             users:\n- name: {context}\n  user:\n    token: not-a-real-token\n"
        ),
    )
    .expect("write the kubeconfig");
    path
}
