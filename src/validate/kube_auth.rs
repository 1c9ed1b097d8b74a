//! Kubernetes auth configs Vault refuses or that cannot work, as OpenBao 2.7
//! writes `auth/<mount>/config` (pinned by `tests/checks_openbao.rs`):
//!
//! - `disable_local_ca_jwt: true` without `kubernetes_ca_cert` is refused
//!   ("kubernetes_ca_cert must be given when disable_local_ca_jwt is true");
//! - without `kubernetes_ca_cert`, Vault reads the CA of its own pod
//!   (`/var/run/secrets/kubernetes.io/serviceaccount/ca.crt`), and refuses
//!   the config when it does not run in a pod. A `host` other than the
//!   in-cluster API address (`kubernetes.default.svc`, or the service IP on
//!   port 443) means Vault reaches the cluster from outside: it needs the
//!   CA given.

use crate::diagnostic::Diagnostic;
use crate::model::Repository;

/// Whether `host` is how a pod reaches the API server: the `kubernetes`
/// service by name, or an IP on the service port (Vault's own docs write
/// `https://$KUBERNETES_PORT_443_TCP_ADDR:443` inside the pod).
pub fn in_cluster_host(host: &str) -> bool {
    let rest = host
        .strip_prefix("https://")
        .or_else(|| host.strip_prefix("http://"))
        .unwrap_or(host);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (name, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((ip, p)) => (ip, p.strip_prefix(':')),
            None => (v6, None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (authority, None),
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.parse::<std::net::IpAddr>().is_ok() {
        return port.is_none_or(|p| p == "443");
    }
    name == "kubernetes"
        || name == "kubernetes.default"
        || name == "kubernetes.default.svc"
        || name.starts_with("kubernetes.default.svc.")
}

pub(super) fn check(repo: &Repository, out: &mut Vec<Diagnostic>) {
    for (meta, origin, spec) in repo.auth_mounts() {
        let Some(k) = &spec.kubernetes else {
            continue;
        };
        if k.ca_cert_file.is_some() {
            continue;
        }
        let name = &meta.name;
        if k.disable_local_ca_jwt == Some(true) {
            out.push(
                Diagnostic::new(
                    origin.at("spec.kubernetes.disableLocalCaJwt"),
                    format!(
                        "auth mount {name}: Vault refuses disableLocalCaJwt: true without a caCertFile"
                    ),
                )
                .hint("set caCertFile to the API server's CA certificate (PEM, e.g. from the kubeconfig's certificate-authority-data)"),
            );
        } else if !in_cluster_host(&k.host) {
            out.push(
                Diagnostic::new(
                    origin.at("spec.kubernetes.host"),
                    format!(
                        "auth mount {name}: no caCertFile, and host {} is not the in-cluster API address: Vault would look for its pod's CA file and refuse the config",
                        k.host
                    ),
                )
                .hint("Vault outside the cluster: set caCertFile to the API server's CA and disableLocalCaJwt: true; Vault in the cluster: host: https://kubernetes.default.svc"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_cluster_hosts() {
        for h in [
            "https://kubernetes.default.svc",
            "https://kubernetes.default.svc:443",
            "https://kubernetes.default.svc.cluster.local/",
            "https://kubernetes",
            "https://KUBERNETES.default",
            "https://10.96.0.1:443",
            "https://10.96.0.1",
            "https://[fd00::1]:443",
        ] {
            assert!(in_cluster_host(h), "{h}");
        }
        for h in [
            "https://k8s.example.com:6443",
            "https://192.168.1.10:6443",
            "https://k",
            "https://kubernetes.example.com",
            "https://[fd00::1]:6443",
        ] {
            assert!(!in_cluster_host(h), "{h}");
        }
    }
}
