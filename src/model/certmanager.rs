//! The cluster objects certplane understands (FORMAT.md section 1): the
//! cert-manager `Issuer`, `ClusterIssuer` and `Certificate`, core `Secret`
//! and `ServiceAccount`, RBAC `Role`/`RoleBinding` (and their cluster
//! variants), and `networking.k8s.io/v1` `Ingress` for its cert-manager
//! annotations.
//!
//! These types are parsed *from* a manifest's `serde_json::Value` (see
//! [`Repository::manifests`](super::Repository)) after the structural check
//! of `validate::crd`, which is the authority on unknown fields and types:
//! the serde types below only model the fields the cross-checks read and
//! deliberately accept the rest (no `deny_unknown_fields`), so that a field
//! the CRD allows and certplane does not model is never refused here. Any
//! other manifest is applied as written and never parsed.
//!
//! A Secret's `data`/`stringData` values are kept only as key names: the
//! cross-checks need to know which keys exist, never what they hold.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

/// The API group of cert-manager's issuers and certificates.
pub const CERT_MANAGER_GROUP: &str = "cert-manager.io";
/// `apiVersion` of cert-manager's kinds.
pub const CERT_MANAGER_V1: &str = "cert-manager.io/v1";
/// The namespace cert-manager runs in by default (ClusterIssuer secrets live
/// there, and its ServiceAccount `cert-manager` is the token requester).
pub const CERT_MANAGER_NAMESPACE: &str = "cert-manager";
/// Annotation of an Ingress naming a namespaced Issuer.
pub const INGRESS_ISSUER: &str = "cert-manager.io/issuer";
/// Annotation of an Ingress naming a ClusterIssuer.
pub const INGRESS_CLUSTER_ISSUER: &str = "cert-manager.io/cluster-issuer";

/// The group of an `apiVersion` (`cert-manager.io/v1` -> `cert-manager.io`,
/// `v1` -> the core group `""`).
pub fn group_of(api_version: &str) -> &str {
    match api_version.rsplit_once('/') {
        Some((g, _)) => g,
        None => "",
    }
}

/// A reference to a key of a Secret in the referrer's namespace
/// (`{name, key}`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// The Secret.
    pub name: String,
    /// The key; cert-manager defaults depend on the field.
    #[serde(default)]
    pub key: Option<String>,
}

/// A reference to a Secret by name only.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectRef {
    /// The object's name.
    pub name: String,
}

/// `spec` of an `Issuer` or `ClusterIssuer`: exactly one issuer type.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IssuerSpec {
    /// ACME (Let's Encrypt and others).
    #[serde(default)]
    pub acme: Option<AcmeIssuer>,
    /// A CA whose key pair is in a Secret.
    #[serde(default)]
    pub ca: Option<CaIssuer>,
    /// Self-signed certificates.
    #[serde(default)]
    pub self_signed: Option<SelfSignedIssuer>,
    /// Vault / OpenBao PKI.
    #[serde(default)]
    pub vault: Option<VaultIssuer>,
    /// Venafi (not modelled: passed through).
    #[serde(default)]
    pub venafi: Option<Value>,
}

impl IssuerSpec {
    /// The names of the issuer types that are set.
    pub fn types(&self) -> Vec<&'static str> {
        let mut t = Vec::new();
        if self.acme.is_some() {
            t.push("acme");
        }
        if self.ca.is_some() {
            t.push("ca");
        }
        if self.self_signed.is_some() {
            t.push("selfSigned");
        }
        if self.vault.is_some() {
            t.push("vault");
        }
        if self.venafi.is_some() {
            t.push("venafi");
        }
        t
    }
}

/// `spec.ca`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CaIssuer {
    /// The Secret holding `tls.crt` and `tls.key` of the CA.
    pub secret_name: String,
}

/// `spec.selfSigned`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SelfSignedIssuer {
    /// CRL distribution points written into issued certificates.
    #[serde(default)]
    pub crl_distribution_points: Vec<String>,
}

/// `spec.vault`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VaultIssuer {
    /// Vault URL, e.g. `https://vault.example.com:8200`.
    pub server: String,
    /// The sign endpoint: `<mount>/sign/<role>` and variants.
    pub path: String,
    /// Vault Enterprise / OpenBao namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Base64 PEM CA of the Vault server's TLS certificate.
    #[serde(default)]
    pub ca_bundle: Option<String>,
    /// The same, from a Secret.
    #[serde(default)]
    pub ca_bundle_secret_ref: Option<SecretKeySelector>,
    /// mTLS client certificate (Secret key).
    #[serde(default)]
    pub client_cert_secret_ref: Option<SecretKeySelector>,
    /// mTLS client key (Secret key).
    #[serde(default)]
    pub client_key_secret_ref: Option<SecretKeySelector>,
    /// TLS server name override.
    #[serde(default)]
    pub server_name: Option<String>,
    /// How cert-manager logs in.
    pub auth: VaultAuth,
}

/// `spec.vault.auth`: exactly one method.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VaultAuth {
    /// A Vault token in a Secret.
    #[serde(default)]
    pub token_secret_ref: Option<SecretKeySelector>,
    /// AppRole.
    #[serde(default)]
    pub app_role: Option<VaultAppRole>,
    /// TLS client certificate auth (`auth/cert`).
    #[serde(default)]
    pub client_certificate: Option<VaultClientCertificate>,
    /// Kubernetes service account auth.
    #[serde(default)]
    pub kubernetes: Option<VaultKubernetes>,
    /// AWS IAM auth (not modelled).
    #[serde(default)]
    pub aws: Option<Value>,
}

impl VaultAuth {
    /// The names of the methods that are set.
    pub fn methods(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if self.token_secret_ref.is_some() {
            m.push("tokenSecretRef");
        }
        if self.app_role.is_some() {
            m.push("appRole");
        }
        if self.client_certificate.is_some() {
            m.push("clientCertificate");
        }
        if self.kubernetes.is_some() {
            m.push("kubernetes");
        }
        if self.aws.is_some() {
            m.push("aws");
        }
        m
    }
}

/// `auth.appRole`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VaultAppRole {
    /// The approle auth mount path, e.g. `approle`.
    pub path: String,
    /// The role ID.
    pub role_id: String,
    /// The Secret key holding the secret ID.
    pub secret_ref: SecretKeySelector,
}

/// `auth.clientCertificate`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VaultClientCertificate {
    /// `/v1/auth/cert` by default.
    #[serde(default)]
    pub mount_path: Option<String>,
    /// The cert auth role.
    #[serde(default)]
    pub name: Option<String>,
    /// A `kubernetes.io/tls` Secret with the client certificate.
    #[serde(default)]
    pub secret_name: Option<String>,
}

/// `auth.kubernetes`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VaultKubernetes {
    /// `/v1/auth/<mount>`; default `/v1/auth/kubernetes`.
    #[serde(default)]
    pub mount_path: Option<String>,
    /// The Kubernetes auth role.
    pub role: String,
    /// A static service account token in a Secret.
    #[serde(default)]
    pub secret_ref: Option<SecretKeySelector>,
    /// A TokenRequest for this ServiceAccount (secretless).
    #[serde(default)]
    pub service_account_ref: Option<ServiceAccountRef>,
}

impl VaultKubernetes {
    /// Default of `mountPath`.
    pub const DEFAULT_MOUNT_PATH: &'static str = "/v1/auth/kubernetes";
}

/// `auth.kubernetes.serviceAccountRef`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountRef {
    /// The ServiceAccount, in the Issuer's namespace.
    pub name: String,
    /// Extra token audiences (cert-manager always adds `vault://...`).
    #[serde(default)]
    pub audiences: Vec<String>,
}

/// `spec.acme`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AcmeIssuer {
    /// The ACME directory URL.
    pub server: String,
    /// Account email.
    #[serde(default)]
    pub email: Option<String>,
    /// The Secret that holds the account key.
    pub private_key_secret_ref: SecretKeySelector,
    /// How challenges are solved.
    #[serde(default)]
    pub solvers: Vec<AcmeSolver>,
}

/// One ACME solver.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AcmeSolver {
    /// Which names this solver is for.
    #[serde(default)]
    pub selector: Option<SolverSelector>,
    /// HTTP-01 (cannot prove a wildcard name).
    #[serde(default)]
    pub http01: Option<Value>,
    /// DNS-01.
    #[serde(default)]
    pub dns01: Option<AcmeDns01>,
}

/// `solvers[].selector`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SolverSelector {
    /// Exact names.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// Zones (the name and its subdomains).
    #[serde(default)]
    pub dns_zones: Vec<String>,
    /// Labels of the Certificate.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// `solvers[].dns01`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AcmeDns01 {
    /// Cloudflare.
    #[serde(default)]
    pub cloudflare: Option<Cloudflare>,
    /// `None` or `Follow`.
    #[serde(default)]
    pub cname_strategy: Option<String>,
}

/// `dns01.cloudflare`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Cloudflare {
    /// Account email (with an API key).
    #[serde(default)]
    pub email: Option<String>,
    /// An API token (preferred).
    #[serde(default)]
    pub api_token_secret_ref: Option<SecretKeySelector>,
    /// A global API key (legacy).
    #[serde(default)]
    pub api_key_secret_ref: Option<SecretKeySelector>,
}

/// `spec` of a `Certificate`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSpec {
    /// The Secret that receives the key pair.
    pub secret_name: String,
    /// Subject common name.
    #[serde(default)]
    pub common_name: Option<String>,
    /// DNS SANs.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// IP SANs.
    #[serde(default)]
    pub ip_addresses: Vec<String>,
    /// URI SANs.
    #[serde(default)]
    pub uris: Vec<String>,
    /// Email SANs.
    #[serde(default)]
    pub email_addresses: Vec<String>,
    /// Requested lifetime (Go duration; cert-manager default 2160h).
    #[serde(default)]
    pub duration: Option<String>,
    /// Renew this long before expiry (default: a third of the lifetime).
    #[serde(default)]
    pub renew_before: Option<String>,
    /// A CA certificate.
    #[serde(default, rename = "isCA")]
    pub is_ca: Option<bool>,
    /// Key usages.
    #[serde(default)]
    pub usages: Vec<String>,
    /// The private key.
    #[serde(default)]
    pub private_key: Option<PrivateKey>,
    /// The issuer.
    pub issuer_ref: IssuerRef,
    /// Labels and annotations of the Secret.
    #[serde(default)]
    pub secret_template: Option<SecretTemplate>,
    /// Subject fields other than the common name.
    #[serde(default)]
    pub subject: Option<Value>,
}

/// `privateKey`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PrivateKey {
    /// `RSA` (default), `ECDSA`, `Ed25519`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// `PKCS1` (default) or `PKCS8`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// Bits (RSA 2048 default; ECDSA 256 default).
    #[serde(default)]
    pub size: Option<i64>,
    /// `Never` or `Always`.
    #[serde(default)]
    pub rotation_policy: Option<String>,
}

/// `issuerRef`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    /// The issuer's name.
    pub name: String,
    /// `Issuer` (default) or `ClusterIssuer` (or an external kind).
    #[serde(default)]
    pub kind: Option<String>,
    /// `cert-manager.io` (default) or an external issuer's group.
    #[serde(default)]
    pub group: Option<String>,
}

/// `secretTemplate`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplate {
    /// Annotations copied to the Secret.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Labels copied to the Secret.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A core `Secret`: its type and the names of its keys (never the values).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Secret {
    /// `type` (`Opaque` by default).
    pub secret_type: Option<String>,
    /// Keys of `data` and `stringData` together.
    pub keys: BTreeSet<String>,
}

impl Secret {
    /// Reads a Secret manifest, keeping only key names.
    pub fn from_manifest(v: &Value) -> Secret {
        let mut keys = BTreeSet::new();
        for field in ["data", "stringData"] {
            if let Some(m) = v.get(field).and_then(Value::as_object) {
                keys.extend(m.keys().cloned());
            }
        }
        let secret_type = v.get("type").and_then(Value::as_str).map(str::to_string);
        if secret_type.as_deref() == Some("kubernetes.io/service-account-token") {
            // Filled in by the token controller.
            keys.extend(["token", "ca.crt", "namespace"].map(str::to_string));
        }
        Secret { secret_type, keys }
    }
}

/// A policy rule of a `Role` or `ClusterRole`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// API groups (`""` is core, `*` any).
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// Resources (`serviceaccounts/token`, `*`).
    #[serde(default)]
    pub resources: Vec<String>,
    /// Object names (empty: all).
    #[serde(default)]
    pub resource_names: Vec<String>,
    /// Verbs (`create`, `*`).
    #[serde(default)]
    pub verbs: Vec<String>,
}

impl PolicyRule {
    /// Whether this rule allows `verb` on `group`/`resource` named `name`.
    pub fn allows(&self, group: &str, resource: &str, name: &str, verb: &str) -> bool {
        let has = |list: &[String], x: &str| list.iter().any(|i| i == "*" || i == x);
        has(&self.api_groups, group)
            && has(&self.resources, resource)
            && has(&self.verbs, verb)
            && (self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == name))
    }
}

/// A `Role` or `ClusterRole`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    /// Its rules.
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
}

/// `roleRef` of a binding.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    /// `rbac.authorization.k8s.io`.
    #[serde(default)]
    pub api_group: String,
    /// `Role` or `ClusterRole`.
    pub kind: String,
    /// The role's name.
    pub name: String,
}

/// A subject of a binding.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// `ServiceAccount`, `User`, `Group`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// For a ServiceAccount, its namespace.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A `RoleBinding` or `ClusterRoleBinding`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RoleBinding {
    /// The role granted.
    pub role_ref: RoleRef,
    /// Who it is granted to.
    #[serde(default)]
    pub subjects: Vec<Subject>,
}

/// `spec` of an `Ingress` (only TLS matters here).
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// TLS entries: hosts and the Secret cert-manager fills.
    #[serde(default)]
    pub tls: Vec<IngressTls>,
}

/// `spec.tls[]` of an Ingress.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    /// Host names.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The Secret.
    #[serde(default)]
    pub secret_name: Option<String>,
}

/// A cluster object certplane understands, parsed from its manifest.
#[derive(Clone, Debug, PartialEq)]
pub enum ClusterObject {
    /// `cert-manager.io/v1` `Issuer`.
    Issuer(IssuerSpec),
    /// `cert-manager.io/v1` `ClusterIssuer`.
    ClusterIssuer(IssuerSpec),
    /// `cert-manager.io/v1` `Certificate`.
    Certificate(CertificateSpec),
    /// `v1` `Secret`.
    Secret(Secret),
    /// `v1` `ServiceAccount`.
    ServiceAccount,
    /// `rbac.authorization.k8s.io/v1` `Role`.
    Role(Role),
    /// `rbac.authorization.k8s.io/v1` `ClusterRole`.
    ClusterRole(Role),
    /// `rbac.authorization.k8s.io/v1` `RoleBinding`.
    RoleBinding(RoleBinding),
    /// `rbac.authorization.k8s.io/v1` `ClusterRoleBinding`.
    ClusterRoleBinding(RoleBinding),
    /// `networking.k8s.io/v1` `Ingress`.
    Ingress(IngressSpec),
}

/// Why a manifest could not be read as its typed object: the dotted path
/// (relative to the document) and serde's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Where (e.g. `spec`, `spec.vault`).
    pub path: String,
    /// What serde said.
    pub message: String,
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value, field: &str) -> Result<T, ParseError> {
    let sub = v
        .get(field)
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    serde_json::from_value(sub).map_err(|e| ParseError {
        path: field.to_string(),
        message: e.to_string(),
    })
}

impl ClusterObject {
    /// The typed object of a manifest, `Ok(None)` for a kind certplane
    /// passes through unchanged.
    pub fn from_manifest(v: &Value) -> Result<Option<ClusterObject>, ParseError> {
        let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
        Ok(Some(match (api, kind) {
            (CERT_MANAGER_V1, "Issuer") => ClusterObject::Issuer(parse(v, "spec")?),
            (CERT_MANAGER_V1, "ClusterIssuer") => ClusterObject::ClusterIssuer(parse(v, "spec")?),
            (CERT_MANAGER_V1, "Certificate") => ClusterObject::Certificate(parse(v, "spec")?),
            ("v1", "Secret") => ClusterObject::Secret(Secret::from_manifest(v)),
            ("v1", "ServiceAccount") => ClusterObject::ServiceAccount,
            ("rbac.authorization.k8s.io/v1", "Role") => {
                ClusterObject::Role(serde_json::from_value(v.clone()).map_err(|e| ParseError {
                    path: "rules".into(),
                    message: e.to_string(),
                })?)
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                ClusterObject::ClusterRole(serde_json::from_value(v.clone()).map_err(|e| {
                    ParseError {
                        path: "rules".into(),
                        message: e.to_string(),
                    }
                })?)
            }
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                ClusterObject::RoleBinding(serde_json::from_value(v.clone()).map_err(|e| {
                    ParseError {
                        path: "roleRef".into(),
                        message: e.to_string(),
                    }
                })?)
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                ClusterObject::ClusterRoleBinding(serde_json::from_value(v.clone()).map_err(
                    |e| ParseError {
                        path: "roleRef".into(),
                        message: e.to_string(),
                    },
                )?)
            }
            ("networking.k8s.io/v1", "Ingress") => ClusterObject::Ingress(parse(v, "spec")?),
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_vault_issuer_and_keeps_only_secret_key_names() {
        let v = json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
            "metadata": {"name": "i"},
            "spec": {"vault": {"server": "https://v", "path": "pki/sign/r",
                "auth": {"kubernetes": {"role": "r", "serviceAccountRef": {"name": "sa", "audiences": ["a"]}}}}}});
        let Some(ClusterObject::Issuer(s)) = ClusterObject::from_manifest(&v).unwrap() else {
            panic!("not an issuer")
        };
        assert_eq!(s.types(), ["vault"]);
        let k = s.vault.unwrap().auth.kubernetes.unwrap();
        assert_eq!(k.service_account_ref.unwrap().audiences, ["a"]);

        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"token": "hvs.secret"}});
        let Some(ClusterObject::Secret(s)) = ClusterObject::from_manifest(&secret).unwrap() else {
            panic!("not a secret")
        };
        assert!(s.keys.contains("token"));
        assert!(!format!("{s:?}").contains("hvs.secret"));
    }

    #[test]
    fn other_kinds_pass_through() {
        let v = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
        assert_eq!(ClusterObject::from_manifest(&v).unwrap(), None);
        assert_eq!(group_of("cert-manager.io/v1"), "cert-manager.io");
        assert_eq!(group_of("v1"), "");
    }

    #[test]
    fn rbac_rules_match_with_wildcards_and_names() {
        let r = PolicyRule {
            api_groups: vec!["".into()],
            resources: vec!["serviceaccounts/token".into()],
            resource_names: vec!["vault-issuer".into()],
            verbs: vec!["create".into()],
        };
        assert!(r.allows("", "serviceaccounts/token", "vault-issuer", "create"));
        assert!(!r.allows("", "serviceaccounts/token", "other", "create"));
        assert!(!r.allows("", "serviceaccounts/token", "vault-issuer", "get"));
    }
}
