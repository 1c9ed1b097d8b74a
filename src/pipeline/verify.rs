//! The verify step: every Vault-backed Issuer of the repository, checked
//! the way cert-manager will use it (its credentials read from the cluster,
//! a login and a throwaway signature at Vault, the chain checked; see
//! [`crate::verify`]).

use serde_json::Value;

use super::prepare::Prepared;
use crate::addr::Addr;
use crate::cluster::{Cluster, ClusterError};
use crate::model::Loaded;
use crate::verify::{
    Connection, IssuerReport, Step, check_issuer, client_identity, credentials, probe_for,
};

/// cert-manager's default `--cluster-resource-namespace`.
const CLUSTER_RESOURCE_NAMESPACE: &str = "cert-manager";

/// The cert-manager Issuers and ClusterIssuers of `manifests` that use
/// Vault.
pub fn vault_issuers(manifests: &[Loaded<Value>]) -> Vec<&Value> {
    manifests
        .iter()
        .map(|m| &m.spec)
        .filter(|m| {
            m["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("cert-manager.io/"))
                && matches!(m["kind"].as_str(), Some("Issuer" | "ClusterIssuer"))
                && m["spec"].get("vault").is_some()
        })
        .collect()
}

/// The cluster the Issuers' credentials are read from: `spec.cluster`, else
/// the environment's.
pub async fn credentials_cluster(prepared: &Prepared) -> Result<Cluster, ClusterError> {
    let target = prepared
        .repo
        .config
        .as_ref()
        .and_then(|c| c.spec.cluster.as_ref());
    Cluster::connect(target).await
}

/// The CA bundle of an Issuer's `spec.vault.caBundle` (base64 PEM).
fn ca_bundle(vault: &Value) -> Option<String> {
    use base64::Engine as _;
    let b = vault["caBundle"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
    String::from_utf8(bytes).ok()
}

/// Checks one Issuer: reads its credentials from `cluster`, then logs in
/// and signs at Vault (at `vault_addr` when given, else at the Issuer's
/// `server`).
pub async fn verify_issuer(
    prepared: &Prepared,
    cluster: &Cluster,
    issuer: &Value,
    vault_addr: Option<&str>,
) -> IssuerReport {
    let addr = Addr::from(crate::cluster::manifest::kube_ref(issuer));
    let vault = &issuer["spec"]["vault"];
    let path = vault["path"].as_str().unwrap_or_default();
    let server = vault_addr.unwrap_or_else(|| vault["server"].as_str().unwrap_or_default());
    let found = match client_identity(cluster, issuer, CLUSTER_RESOURCE_NAMESPACE).await {
        Ok(identity) => credentials(cluster, issuer, CLUSTER_RESOURCE_NAMESPACE)
            .await
            .map(|c| (identity, c)),
        Err(e) => Err(e),
    };
    match found {
        Ok((client_identity, creds)) => {
            let connection = Connection {
                server: server.to_string(),
                ca_bundle_pem: ca_bundle(vault),
                namespace: vault["namespace"].as_str().map(str::to_string),
                client_identity,
            };
            let probe = probe_for(&prepared.repo, path);
            check_issuer(addr, &connection, path, &creds, probe).await
        }
        Err(why) => IssuerReport {
            addr,
            steps: vec![Step {
                what: "credentials".into(),
                result: Err(why.to_string()),
            }],
        },
    }
}
