//! `certplane verify`: every Vault-backed Issuer of the repository, checked
//! the way cert-manager will use it.

use std::path::Path;

use serde_json::Value;

use super::ExitStatus;
use super::commands::{fail, prepare};
use crate::cluster::{Cluster, reconcile};
use crate::verify::{
    Connection, IssuerReport, Step, check_issuer, client_identity, credentials, probe_for,
};

/// cert-manager's default `--cluster-resource-namespace`.
const CLUSTER_RESOURCE_NAMESPACE: &str = "cert-manager";

fn vault_issuers(manifests: &[crate::model::Loaded<Value>]) -> Vec<&Value> {
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

/// Runs `verify`.
pub async fn run(dir: &Path, vault_addr: Option<&str>) -> ExitStatus {
    let prepared = match prepare(dir) {
        Ok(p) => p,
        Err(s) => return s,
    };
    let issuers = vault_issuers(&prepared.repo.manifests);
    if issuers.is_empty() {
        println!("{}: no Vault issuers to verify", dir.display());
        return ExitStatus::Clean;
    }
    let target = prepared
        .repo
        .config
        .as_ref()
        .and_then(|c| c.spec.cluster.as_ref());
    let cluster = match Cluster::connect(target).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("verify reads the Issuers' credentials from the cluster:");
            return fail(&e);
        }
    };
    let mut failed = 0;
    for issuer in issuers {
        let addr = crate::addr::Addr::Kube(reconcile::kube_ref(issuer));
        let vault = &issuer["spec"]["vault"];
        let path = vault["path"].as_str().unwrap_or_default();
        let server = vault_addr.unwrap_or_else(|| vault["server"].as_str().unwrap_or_default());
        let ca_bundle = vault["caBundle"].as_str().and_then(|b| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .ok()
                .and_then(|v| String::from_utf8(v).ok())
        });
        let found = match client_identity(&cluster, issuer, CLUSTER_RESOURCE_NAMESPACE).await {
            Ok(identity) => credentials(&cluster, issuer, CLUSTER_RESOURCE_NAMESPACE)
                .await
                .map(|c| (identity, c)),
            Err(e) => Err(e),
        };
        let report = match found {
            Ok((client_identity, creds)) => {
                let connection = Connection {
                    server: server.to_string(),
                    ca_bundle_pem: ca_bundle,
                    namespace: vault["namespace"].as_str().map(str::to_string),
                    client_identity,
                };
                check_issuer(
                    addr,
                    &connection,
                    path,
                    &creds,
                    probe_for(&prepared.repo, path),
                )
                .await
            }
            Err(why) => IssuerReport {
                addr,
                steps: vec![Step {
                    what: "credentials".into(),
                    result: Err(why),
                }],
            },
        };
        print!("{}", report.render());
        if !report.ok() {
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!("error: {failed} issuer(s) failed verification");
        ExitStatus::Error
    } else {
        ExitStatus::Clean
    }
}
