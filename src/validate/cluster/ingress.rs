//! An Ingress annotated with `cert-manager.io/issuer` or
//! `cert-manager.io/cluster-issuer` asks cert-manager for a certificate
//! (ingress-shim): it needs `spec.tls` with a `secretName`, one of the two
//! annotations, and its hosts and key annotations are checked like a
//! Certificate's ([`super::certificates`]).

use std::collections::BTreeMap;

use super::certificates::{Request, items};
use super::{Checker, IssuerIndex};
use crate::model::Origin;
use crate::model::certmanager::{
    CERT_MANAGER_GROUP, ClusterObject, INGRESS_CLUSTER_ISSUER, INGRESS_ISSUER, IngressSpec,
};

/// An Ingress with what its checks need.
type IngressRow = (
    Origin,
    String,
    String,
    BTreeMap<String, String>,
    IngressSpec,
);

impl<'a> Checker<'a> {
    pub(super) fn ingresses(&self, issuers: &IssuerIndex) {
        let list: Vec<IngressRow> = self
            .objs
            .iter()
            .filter_map(|o| match &o.obj {
                ClusterObject::Ingress(s) => Some((
                    o.origin().clone(),
                    o.ns().to_string(),
                    o.name().to_string(),
                    o.m.meta.annotations.clone(),
                    s.clone(),
                )),
                _ => None,
            })
            .collect();
        for (origin, ns, name, ann, spec) in list {
            let what = format!("Ingress {ns}/{name}");
            let (issuer, cluster, key) =
                match (ann.get(INGRESS_ISSUER), ann.get(INGRESS_CLUSTER_ISSUER)) {
                    (None, None) => continue,
                    (Some(_), Some(_)) => {
                        self.push(
                            &origin,
                            &format!("metadata.annotations.{INGRESS_CLUSTER_ISSUER}"),
                            format!(
                                "{what}: both {INGRESS_ISSUER} and {INGRESS_CLUSTER_ISSUER} are set"
                            ),
                            "keep one of the two annotations",
                        );
                        continue;
                    }
                    (Some(i), None) => (i.clone(), false, INGRESS_ISSUER),
                    (None, Some(i)) => (i.clone(), true, INGRESS_CLUSTER_ISSUER),
                };
            if ann
                .get("cert-manager.io/issuer-group")
                .is_some_and(|g| g != CERT_MANAGER_GROUP)
            {
                continue;
            }
            let ann_at = |k: &str| format!("metadata.annotations.{k}");
            if spec.tls.is_empty() {
                self.push(
                    &origin,
                    &ann_at(key),
                    format!("{what}: has a {key} annotation but no spec.tls"),
                    "add spec.tls with hosts and a secretName, or remove the annotation",
                );
                continue;
            }
            let Some(facts) =
                self.resolve(issuers, &origin, &ann_at(key), &what, &ns, &issuer, cluster)
            else {
                continue;
            };
            let mut dns = Vec::new();
            for (i, t) in spec.tls.iter().enumerate() {
                if t.secret_name.as_deref().is_none_or(str::is_empty) {
                    self.push(
                        &origin,
                        &format!("spec.tls[{i}]"),
                        format!("{what}: spec.tls[{i}] has no secretName"),
                        "cert-manager needs a secretName to write the certificate to",
                    );
                }
                dns.extend(items(&t.hosts, &format!("spec.tls[{i}].hosts")));
            }
            let a = |k: &str| ann.get(k).map(|v| (v.clone(), ann_at(k)));
            let size = ann
                .get("cert-manager.io/private-key-size")
                .and_then(|s| s.parse::<i64>().ok())
                .map(|s| (s, ann_at("cert-manager.io/private-key-size")));
            let req = Request {
                what,
                origin: &origin,
                common_name: a("cert-manager.io/common-name"),
                dns_names: dns,
                ip_addresses: Vec::new(),
                uris: Vec::new(),
                duration: a("cert-manager.io/duration"),
                renew_before: a("cert-manager.io/renew-before"),
                algorithm: a("cert-manager.io/private-key-algorithm"),
                size,
                key_at: ann_at(key),
                cn_at: ann_at(key),
            };
            self.request(&req, &facts);
        }
    }
}
