//! `certplane verify`: for each Vault-backed Issuer, do what cert-manager
//! will do — reach Vault, log in with the Issuer's own credentials, sign a
//! throwaway CSR through the Issuer's path — and check the chain that comes
//! back. The cluster part (reading the Issuer's Secret, a TokenRequest for
//! its ServiceAccount) lives in [`credentials`]; the Vault part in
//! [`check_issuer`], which works from plain credentials.

use std::path::PathBuf;

use rcgen::PublicKeyData as _;
use serde_json::{Value, json};

use crate::addr::Addr;
use crate::model::{Repository, RoleKeyType, Sensitive, Source};
use crate::pki::x509;
use crate::vault::{AuthSettings, Vault, VaultSettings};

/// Why a check of an Issuer failed: its credentials could not be read from
/// the cluster, or the throwaway signature or its chain did not pass. One
/// line, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A Secret the Issuer names could not be read in time.
    #[error("reading Secret {secret} timed out")]
    SecretTimeout {
        /// `namespace/name`.
        secret: String,
    },
    /// The API server refused to give a Secret the Issuer names.
    #[error("cannot read Secret {secret}: {why}")]
    SecretUnreadable {
        /// `namespace/name`.
        secret: String,
        /// The API server's answer, on one line.
        why: String,
    },
    /// A Secret the Issuer names does not exist.
    #[error("Secret {secret} does not exist")]
    NoSecret {
        /// `namespace/name`.
        secret: String,
    },
    /// A Secret lacks the key the Issuer names.
    #[error("Secret {secret} has no key {key}")]
    NoKey {
        /// `namespace/name`.
        secret: String,
        /// The key.
        key: String,
    },
    /// A Secret's value is not text.
    #[error("Secret {secret} key {key} is not text")]
    NotText {
        /// `namespace/name`.
        secret: String,
        /// The key.
        key: String,
    },
    /// A Secret's value is not the PEM it should be.
    #[error("Secret {secret} key {key} holds no PEM {what}")]
    NotPem {
        /// `namespace/name`.
        secret: String,
        /// The key.
        key: String,
        /// "certificate" or "private key".
        what: &'static str,
    },
    /// A TokenRequest for the Issuer's ServiceAccount did not come back in
    /// time.
    #[error("TokenRequest for {service_account} timed out")]
    TokenRequestTimeout {
        /// `namespace/name`.
        service_account: String,
    },
    /// The API server refused the TokenRequest.
    #[error(
        "TokenRequest for ServiceAccount {service_account} (audiences {audiences:?}) failed: {why}"
    )]
    TokenRequestRefused {
        /// `namespace/name`.
        service_account: String,
        /// The audiences asked for.
        audiences: Vec<String>,
        /// The API server's answer, on one line.
        why: String,
    },
    /// The TokenRequest's answer had no token.
    #[error("TokenRequest for {service_account} returned no token")]
    NoToken {
        /// `namespace/name`.
        service_account: String,
    },
    /// The Issuer's `spec.vault` does not say how to log in, or says it by
    /// halves.
    #[error("{0}")]
    Issuer(&'static str),
    /// No throwaway key could be made.
    #[error("cannot make a throwaway key: {0}")]
    Key(String),
    /// No throwaway CSR could be made.
    #[error("cannot build a CSR: {0}")]
    Csr(String),
    /// The sign path answered without a certificate.
    #[error("{path} answered without a certificate")]
    NoCertificate {
        /// The sign path.
        path: String,
    },
    /// Vault refused to sign.
    #[error("{cause}; check the role allows this name and the policy grants update on {path}")]
    Sign {
        /// The sign path.
        path: String,
        /// Vault's error, on one line.
        cause: String,
    },
    /// A certificate of the answer cannot be read.
    #[error("{what}: {why}")]
    Certificate {
        /// `leaf` or `issuing_ca`.
        what: &'static str,
        /// Why.
        why: String,
    },
    /// The chain Vault returned does not hold.
    #[error("{0}")]
    Chain(String),
}

/// How the Issuer logs in, with the secret already read.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `auth.tokenSecretRef`.
    Token(Sensitive),
    /// `auth.appRole`.
    AppRole {
        /// `path` (the auth mount).
        mount: String,
        /// `roleId`.
        role_id: String,
        /// The secret ID from `secretRef`.
        secret_id: Sensitive,
    },
    /// `auth.kubernetes`: a service account token.
    Kubernetes {
        /// The auth mount (from `mountPath`, without `/v1/auth/`).
        mount: String,
        /// `role`.
        role: String,
        /// The token (from a TokenRequest or a static Secret).
        jwt: Sensitive,
    },
    /// `auth.clientCertificate`: TLS certificate auth, logging in with a
    /// client certificate over mutual TLS.
    Cert {
        /// The auth mount (from `mountPath`, without `/v1/auth/`).
        mount: String,
        /// `name`: the cert role (none: Vault tries every role).
        name: Option<String>,
        /// The certificate and key (PEM) of `secretName`; none: the
        /// connection's own client certificate (`clientCertSecretRef`).
        identity: Option<Sensitive>,
        /// Where the certificate comes from, for messages.
        from: String,
    },
}

impl Credentials {
    fn describe(&self) -> String {
        match self {
            Credentials::Token(_) => "a token from the Issuer's Secret".to_string(),
            Credentials::AppRole { mount, role_id, .. } => {
                format!("AppRole {role_id} on auth/{mount}")
            }
            Credentials::Kubernetes { mount, role, .. } => {
                format!("kubernetes auth role {role} on auth/{mount}")
            }
            Credentials::Cert {
                mount, name, from, ..
            } => match name {
                Some(n) => format!("TLS certificate auth role {n} on auth/{mount} ({from})"),
                None => format!("TLS certificate auth on auth/{mount} ({from})"),
            },
        }
    }

    /// What usually makes a login of this kind fail, from what Vault said.
    fn login_hint(&self, said: &str) -> String {
        let said = said.to_lowercase();
        match self {
            Credentials::Token(_) => {
                "the token in the Issuer's Secret is invalid, expired or revoked: make a new one with the sign policy".into()
            }
            Credentials::AppRole { mount, role_id, .. } => {
                if said.contains("role id") || said.contains("role_id") {
                    format!("role ID {role_id} is unknown on auth/{mount}: check the Issuer's roleId against the AppRole's roleId")
                } else {
                    format!(
                        "the secret ID in the Issuer's Secret is expired, used up, or was not issued for role ID {role_id} on auth/{mount}: \
                         with deliverTo, `certplane apply` delivers a new one"
                    )
                }
            }
            Credentials::Kubernetes { mount, role, .. } => {
                if said.contains("invalid role name") {
                    format!("role {role} does not exist on auth/{mount}: check the Issuer's auth.kubernetes.role (the KubernetesAuthRole's name)")
                } else if said.contains("audience") {
                    format!(
                        "the token's audience is not the one role {role} wants: cert-manager requests \
                         vault://<namespace>/<issuer> (vault://<issuer> for a ClusterIssuer); set the \
                         KubernetesAuthRole's audience to it"
                    )
                } else if said.contains("service account name not authorized") {
                    format!("the Issuer's ServiceAccount is not in boundServiceAccountNames of role {role}")
                } else if said.contains("namespace not authorized") {
                    format!("the Issuer's namespace is not in boundServiceAccountNamespaces of role {role}")
                } else {
                    format!(
                        "Vault could not review the token with the API server (TokenReview); the usual causes: \
                         auth/{mount}/config has no token reviewer (declare tokenReviewer in the AuthMount: without \
                         one Vault reviews the token with itself, which the API server refuses for an \
                         audience-bound token), the reviewer's account is not bound to system:auth-delegator, \
                         the reviewer token is no longer valid (its Secret was re-created: apply again), \
                         kubernetes_host or kubernetes_ca_cert do not reach this cluster from Vault, or the \
                         token expired"
                    )
                }
            }
            Credentials::Cert { mount, name, .. } => {
                let role = name
                    .as_deref()
                    .map(|n| format!("cert role {n} (auth/{mount}/certs/{n})"))
                    .unwrap_or_else(|| format!("a cert role on auth/{mount}"));
                format!(
                    "Vault's certificate auth did not accept the client certificate: check that {role} exists, \
                     that its certificate is the CA that signed this client certificate, that the client \
                     certificate has not expired and allows client auth, and that it matches the role's \
                     allowed names"
                )
            }
        }
    }

    fn auth_settings(&self) -> AuthSettings {
        let s = |v: &Sensitive| Source::Value(v.expose().to_string());
        match self {
            Credentials::Token(t) => AuthSettings::Token { token: s(t) },
            Credentials::AppRole {
                mount,
                role_id,
                secret_id,
            } => AuthSettings::AppRole {
                mount: mount.clone(),
                role_id: role_id.clone(),
                secret_id: s(secret_id),
            },
            Credentials::Kubernetes { mount, role, jwt } => AuthSettings::Kubernetes {
                mount: mount.clone(),
                role: role.clone(),
                jwt: s(jwt),
            },
            Credentials::Cert {
                mount,
                name,
                identity,
                ..
            } => AuthSettings::Cert {
                mount: mount.clone(),
                name: name.clone(),
                identity: identity.clone(),
            },
        }
    }
}

/// How an Issuer reaches its Vault (not how it logs in).
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// `spec.vault.server`, or `verify --vault-addr`.
    pub server: String,
    /// `spec.vault.caBundle`, decoded (public).
    pub ca_bundle_pem: Option<String>,
    /// `spec.vault.namespace`.
    pub namespace: Option<String>,
    /// The client certificate and key (PEM) of `clientCertSecretRef` and
    /// `clientKeySecretRef`, for a Vault that requires mutual TLS.
    pub client_identity: Option<Sensitive>,
}

/// One step of a check and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What was checked.
    pub what: String,
    /// `Ok(detail)` or `Err(why, with a hint)`.
    pub result: Result<String, String>,
}

/// The checks of one Issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerReport {
    /// The Issuer.
    pub addr: Addr,
    /// Steps in order; the first failure ends the list.
    pub steps: Vec<Step>,
}

impl IssuerReport {
    /// Whether every step passed.
    pub fn ok(&self) -> bool {
        self.steps.iter().all(|s| s.result.is_ok())
    }

    /// The report for people.
    pub fn render(&self) -> String {
        let mut out = format!("{}\n", self.addr);
        for s in &self.steps {
            match &s.result {
                Ok(d) => out.push_str(&format!("  ok    {}: {d}\n", s.what)),
                Err(e) => out.push_str(&format!("  FAIL  {}: {e}\n", s.what)),
            }
        }
        out
    }
}

/// What the throwaway CSR asks for: names and a key the role accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Common name (and DNS SAN).
    pub common_name: Option<String>,
    /// URI SANs.
    pub uris: Vec<String>,
    /// Key type the role requires (`None`: Vault's default, rsa).
    pub key_type: Option<RoleKeyType>,
    /// Key size the role requires.
    pub key_bits: Option<u32>,
}

impl Probe {
    /// A probe for a role certplane knows nothing of.
    pub fn generic() -> Probe {
        Probe {
            common_name: Some("certplane-verify.example.com".into()),
            uris: vec![],
            key_type: None,
            key_bits: None,
        }
    }

    /// A throwaway key of the type and size the role asks for.
    fn key(&self) -> Result<rcgen::KeyPair, VerifyError> {
        let fail = |e: &dyn std::fmt::Display| VerifyError::Key(e.to_string());
        match (self.key_type, self.key_bits) {
            (Some(RoleKeyType::Ed25519), _) => {
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(|e| fail(&e))
            }
            (Some(RoleKeyType::Ec), Some(384 | 521)) => {
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).map_err(|e| fail(&e))
            }
            (Some(RoleKeyType::Ec | RoleKeyType::Any), _) => {
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| fail(&e))
            }
            (Some(RoleKeyType::Rsa) | None, bits) => {
                use rsa::pkcs8::EncodePrivateKey as _;
                let bits = bits.unwrap_or(2048).clamp(2048, 4096) as usize;
                let key =
                    rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits).map_err(|e| fail(&e))?;
                let der = key.to_pkcs8_der().map_err(|e| fail(&e))?;
                rcgen::KeyPair::try_from(der.as_bytes()).map_err(|e| fail(&e))
            }
        }
    }
}

/// A name and key the role should accept, from the repository's `PkiRole`
/// for the sign path (`<mount>/sign/<role>` or
/// `<mount>/issuer/<ref>/sign/<role>`).
pub fn probe_for(repo: &Repository, path: &str) -> Probe {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (mount, role) = match parts.as_slice() {
        [mount, "sign", role] | [mount, "issuer", _, "sign", role] => (*mount, *role),
        _ => return Probe::generic(),
    };
    let Some((_, _, spec)) = repo
        .pki_roles()
        .find(|(m, _, s)| m.name == role && s.mount == mount)
    else {
        return Probe::generic();
    };
    let domain = spec.allowed_domains.iter().flatten().next();
    let cn = match domain {
        Some(d) if d.contains('*') => Some(d.replacen('*', "certplane-verify", 1)),
        Some(d) if spec.allow_subdomains == Some(true) => Some(format!("certplane-verify.{d}")),
        Some(d) => Some(d.clone()),
        None if spec.allow_any_name == Some(true) => Some("certplane-verify.example.com".into()),
        None => None,
    };
    let uris = spec
        .allowed_uri_sans
        .iter()
        .flatten()
        .next()
        .map(|u| vec![u.replace('*', "certplane-verify")])
        .unwrap_or_default();
    let generic = Probe::generic();
    Probe {
        common_name: if cn.is_none() && uris.is_empty() {
            generic.common_name
        } else {
            cn
        },
        uris,
        key_type: spec.key_type,
        key_bits: spec.key_bits.filter(|b| *b != 0),
    }
}

impl IssuerReport {
    /// Records a step; whether it passed.
    fn push(&mut self, what: &str, result: Result<String, String>) -> bool {
        let ok = result.is_ok();
        self.steps.push(Step {
            what: what.to_string(),
            result,
        });
        ok
    }
}

/// Checks one Issuer against Vault with the given credentials: health,
/// login, a throwaway signature through `path`, the returned chain.
pub async fn check_issuer(
    addr: Addr,
    connection: &Connection,
    path: &str,
    credentials: &Credentials,
    probe: Probe,
) -> IssuerReport {
    let mut report = IssuerReport {
        addr,
        steps: Vec::new(),
    };
    let Some((vault, _bundle)) = log_in(&mut report, connection, credentials).await else {
        return report;
    };
    let signed = sign(&vault, path, probe).await;
    let Some((signed, key)) = (match signed {
        Ok((signed, key, name)) => {
            let done = format!("signed a throwaway CSR for {name} through {path}");
            report.push("sign", Ok(done)).then_some((signed, key))
        }
        Err(e) => {
            report.push("sign", Err(e.to_string()));
            None
        }
    }) else {
        return report;
    };
    report.push(
        "chain",
        check_chain(&signed, &key).map_err(|e| e.to_string()),
    );
    report
}

/// The steps `vault` and `login`: reach the Issuer's Vault the way it does
/// (its caBundle, namespace and client certificate) and log in with its
/// credentials. The CA bundle file lives as long as the Vault it is for.
async fn log_in(
    report: &mut IssuerReport,
    connection: &Connection,
    credentials: &Credentials,
) -> Option<(Vault, Option<TempPem>)> {
    let server = connection.server.as_str();
    // The Issuer's CA bundle, as a file for the TLS client (public data).
    let bundle = match connection
        .ca_bundle_pem
        .as_deref()
        .map(write_temp_pem)
        .transpose()
    {
        Ok(f) => f,
        Err(e) => {
            let why = format!("cannot use the Issuer's caBundle: {e}");
            report.push("vault", Err(why));
            return None;
        }
    };
    let settings = match VaultSettings::with_token(server, Source::Value(String::new())) {
        Ok(mut s) => {
            s.auth = credentials.auth_settings();
            s.ca_bundle = bundle.as_ref().map(|f| f.0.clone());
            s.namespace = connection.namespace.clone();
            s.client_identity = connection.client_identity.clone();
            s
        }
        Err(e) => {
            report.push("vault", Err(format!("{e}")));
            return None;
        }
    };
    match Vault::connect(&settings).await {
        Ok(v) => {
            report.push("vault", Ok(format!("{server} is initialized and unsealed")));
            report.push("login", Ok(credentials.describe()));
            Some((v, bundle))
        }
        Err(e) => {
            refused(report, server, credentials, &crate::vault::error_chain(&e));
            None
        }
    }
}

/// Records why Vault could not be reached (`vault`) or refused the login
/// (`login`), with the usual causes of the latter.
fn refused(report: &mut IssuerReport, server: &str, credentials: &Credentials, text: &str) {
    let unreachable =
        text.contains("sealed") || text.contains("cannot reach") || text.contains("initialized");
    if unreachable {
        let why = format!("{text} (logging in with {})", credentials.describe());
        report.push("vault", Err(why));
        return;
    }
    report.push("vault", Ok(format!("{server} answered")));
    let why = format!(
        "{text} (logging in with {}); {}",
        credentials.describe(),
        credentials.login_hint(text)
    );
    report.push("login", Err(why));
}

/// The step `sign`: a throwaway key and CSR the role should accept, signed
/// through `path`. Returns Vault's answer, the key and the name signed.
async fn sign(
    vault: &Vault,
    path: &str,
    probe: Probe,
) -> Result<(Value, rcgen::KeyPair, String), VerifyError> {
    let key = probe.key()?;
    let Probe {
        common_name: cn,
        uris,
        ..
    } = probe;
    let csr = throwaway_csr(&key, cn.as_deref(), &uris)?;
    let mut body = json!({"csr": csr, "ttl": "5m"});
    if let Some(cn) = &cn {
        body["common_name"] = json!(cn);
    }
    if !uris.is_empty() {
        body["uri_sans"] = json!(uris.join(","));
    }
    let signed = match vault.write(path.trim_matches('/'), &body).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Err(VerifyError::NoCertificate {
                path: path.to_string(),
            });
        }
        Err(e) => {
            return Err(VerifyError::Sign {
                path: path.to_string(),
                cause: crate::vault::error_chain(&e),
            });
        }
    };
    let name = cn.or_else(|| uris.first().cloned()).unwrap_or_default();
    Ok((signed, key, name))
}

fn throwaway_csr(
    key: &rcgen::KeyPair,
    cn: Option<&str>,
    uris: &[String],
) -> Result<String, VerifyError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| VerifyError::Csr(e.to_string()))?;
    if let Some(cn) = cn {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        if let Ok(name) = cn.to_string().try_into() {
            params.subject_alt_names.push(rcgen::SanType::DnsName(name));
        }
    }
    for u in uris {
        if let Ok(uri) = u.clone().try_into() {
            params.subject_alt_names.push(rcgen::SanType::URI(uri));
        }
    }
    params
        .serialize_request(key)
        .and_then(|c| c.pem())
        .map_err(|e| VerifyError::Csr(e.to_string()))
}

/// The leaf is for our key, is signed by `issuing_ca`, and each certificate
/// of `ca_chain` is signed by the next.
fn check_chain(signed: &Value, key: &rcgen::KeyPair) -> Result<String, VerifyError> {
    let pem = |k: &str| signed.get(k).and_then(Value::as_str).unwrap_or_default();
    let cert = |key: &str, what: &'static str| {
        x509::parse_pem(pem(key)).map_err(|e| VerifyError::Certificate {
            what,
            why: e.to_string(),
        })
    };
    let leaf = cert("certificate", "leaf")?;
    let issuing = cert("issuing_ca", "issuing_ca")?;
    if !x509::is_signed_by(&leaf.der, &issuing.der) {
        return Err(VerifyError::Chain(format!(
            "the leaf is not signed by the issuing CA {:?}",
            issuing.common_name
        )));
    }
    let spki = x509_parser::parse_x509_certificate(&leaf.der)
        .map(|(_, c)| c.public_key().raw.to_vec())
        .unwrap_or_default();
    if spki != key.subject_public_key_info() {
        return Err(VerifyError::Chain(
            "the leaf does not carry the CSR's public key".into(),
        ));
    }
    let mut names = vec![leaf.common_name.clone(), issuing.common_name.clone()];
    let chain: Vec<x509::CertInfo> = signed
        .get("ca_chain")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|p| x509::parse_pem(p).ok())
        .collect();
    for pair in chain.windows(2) {
        if !x509::is_signed_by(&pair[0].der, &pair[1].der) {
            return Err(VerifyError::Chain(format!(
                "ca_chain is broken: {:?} is not signed by {:?}",
                pair[0].common_name, pair[1].common_name
            )));
        }
        names.push(pair[1].common_name.clone());
    }
    names.dedup();
    if issuing.not_after < leaf.not_after {
        return Err(VerifyError::Chain(format!(
            "the issuing CA {:?} expires before the certificate it signed",
            issuing.common_name
        )));
    }
    Ok(names.join(" <- "))
}

/// A temporary PEM file that is removed on drop.
struct TempPem(PathBuf);

impl Drop for TempPem {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_temp_pem(pem: &str) -> std::io::Result<TempPem> {
    let path = std::env::temp_dir().join(format!(
        "certplane-verify-{}-{}.pem",
        std::process::id(),
        x509::sha256_hex(pem.as_bytes())
    ));
    std::fs::write(&path, pem)?;
    Ok(TempPem(path))
}

/// The cluster objects an Issuer reads its credentials from, in its
/// namespace (a ClusterIssuer's: cert-manager's cluster resource
/// namespace).
struct IssuerSecrets<'a> {
    cluster: &'a crate::cluster::Cluster,
    namespace: &'a str,
}

impl IssuerSecrets<'_> {
    /// The value under `r.key` (default `default_key`) of the Secret `r.name`.
    async fn key(&self, r: &Value, default_key: &str) -> Result<Sensitive, VerifyError> {
        let name = r["name"].as_str().unwrap_or_default();
        let key = r["key"].as_str().unwrap_or(default_key);
        read_secret_key(self.cluster, self.namespace, name, key).await
    }
}

/// Reads the credentials an Issuer names, as cert-manager would: from its
/// Secrets, or a TokenRequest for its ServiceAccount with the audience
/// cert-manager asks for (`vault://<namespace>/<issuer>`, `vault://<issuer>`
/// for a ClusterIssuer, plus `serviceAccountRef.audiences`).
pub async fn credentials(
    cluster: &crate::cluster::Cluster,
    issuer: &Value,
    cluster_resource_namespace: &str,
) -> Result<Credentials, VerifyError> {
    let ns = issuer["metadata"]["namespace"]
        .as_str()
        .unwrap_or(cluster_resource_namespace);
    let secrets = IssuerSecrets {
        cluster,
        namespace: ns,
    };
    let auth = &issuer["spec"]["vault"]["auth"];
    if let Some(r) = auth.get("tokenSecretRef") {
        return Ok(Credentials::Token(secrets.key(r, "token").await?));
    }
    if let Some(a) = auth.get("appRole") {
        return Ok(Credentials::AppRole {
            mount: a["path"]
                .as_str()
                .unwrap_or("approle")
                .trim_matches('/')
                .to_string(),
            role_id: a["roleId"].as_str().unwrap_or_default().to_string(),
            secret_id: secrets.key(&a["secretRef"], "secretId").await?,
        });
    }
    if let Some(k) = auth.get("kubernetes") {
        return kubernetes_credentials(&secrets, issuer, k).await;
    }
    if let Some(c) = auth.get("clientCertificate") {
        return certificate_credentials(&secrets, issuer, c).await;
    }
    Err(VerifyError::Issuer(
        "spec.vault.auth names no auth method certplane knows",
    ))
}

/// The mount path of an auth method as cert-manager writes it
/// (`/v1/auth/<mount>`), as a mount.
fn auth_mount(path: Option<&str>, default: &str) -> String {
    path.unwrap_or(default)
        .trim_start_matches("/v1/auth/")
        .trim_matches('/')
        .to_string()
}

/// `auth.kubernetes`: a token from a Secret, or a TokenRequest for the
/// ServiceAccount with the audiences cert-manager asks for.
async fn kubernetes_credentials(
    secrets: &IssuerSecrets<'_>,
    issuer: &Value,
    k: &Value,
) -> Result<Credentials, VerifyError> {
    let mount = auth_mount(k["mountPath"].as_str(), "/v1/auth/kubernetes");
    let role = k["role"].as_str().unwrap_or_default().to_string();
    let jwt = if let Some(r) = k.get("secretRef") {
        secrets.key(r, "token").await?
    } else if let Some(sa) = k.get("serviceAccountRef") {
        let name = issuer["metadata"]["name"].as_str().unwrap_or_default();
        let sa_name = sa["name"].as_str().unwrap_or_default();
        let mut audiences = vec![match issuer["metadata"]["namespace"].as_str() {
            Some(n) => format!("vault://{n}/{name}"),
            None => format!("vault://{name}"),
        }];
        audiences.extend(
            sa["audiences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
        token_request(secrets.cluster, secrets.namespace, sa_name, audiences).await?
    } else {
        return Err(VerifyError::Issuer(
            "auth.kubernetes names neither secretRef nor serviceAccountRef",
        ));
    };
    Ok(Credentials::Kubernetes { mount, role, jwt })
}

/// `auth.clientCertificate`: the certificate of `secretName`, else the
/// connection's own (`clientCertSecretRef`).
async fn certificate_credentials(
    secrets: &IssuerSecrets<'_>,
    issuer: &Value,
    c: &Value,
) -> Result<Credentials, VerifyError> {
    let ns = secrets.namespace;
    let mount = auth_mount(c["mountPath"].as_str(), "/v1/auth/cert");
    let name = c["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let (identity, from) = match c["secretName"].as_str().filter(|n| !n.is_empty()) {
        Some(secret) => (
            Some(tls_pair(secrets, (secret, "tls.crt"), (secret, "tls.key")).await?),
            format!("certificate from Secret {ns}/{secret}"),
        ),
        None => {
            let vault = &issuer["spec"]["vault"];
            if vault.get("clientCertSecretRef").is_none() {
                return Err(VerifyError::Issuer(
                    "auth.clientCertificate names no certificate: set auth.clientCertificate.secretName \
                     (a kubernetes.io/tls Secret) or spec.vault.clientCertSecretRef and clientKeySecretRef",
                ));
            }
            let secret = vault["clientCertSecretRef"]["name"]
                .as_str()
                .unwrap_or_default();
            (
                None,
                format!("the mTLS certificate from Secret {ns}/{secret}"),
            )
        }
    };
    Ok(Credentials::Cert {
        mount,
        name,
        identity,
        from,
    })
}

/// The client certificate and key an Issuer presents on every connection to
/// Vault (`clientCertSecretRef`, `clientKeySecretRef`), as cert-manager
/// reads them: keys `tls.crt` and `tls.key` unless the refs name others.
pub async fn client_identity(
    cluster: &crate::cluster::Cluster,
    issuer: &Value,
    cluster_resource_namespace: &str,
) -> Result<Option<Sensitive>, VerifyError> {
    let vault = &issuer["spec"]["vault"];
    let secrets = IssuerSecrets {
        cluster,
        namespace: issuer["metadata"]["namespace"]
            .as_str()
            .unwrap_or(cluster_resource_namespace),
    };
    let (cert, key) = (
        vault.get("clientCertSecretRef"),
        vault.get("clientKeySecretRef"),
    );
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(c), Some(k)) => {
            let part = |r: &Value, default_key: &'static str| {
                (
                    r["name"].as_str().unwrap_or_default().to_string(),
                    r["key"].as_str().unwrap_or(default_key).to_string(),
                )
            };
            let (cn, ck) = part(c, "tls.crt");
            let (kn, kk) = part(k, "tls.key");
            tls_pair(&secrets, (&cn, &ck), (&kn, &kk)).await.map(Some)
        }
        _ => Err(VerifyError::Issuer(
            "spec.vault names only one of clientCertSecretRef and clientKeySecretRef; mutual TLS needs both",
        )),
    }
}

/// A PEM certificate and key read from the cluster, as one identity.
async fn tls_pair(
    secrets: &IssuerSecrets<'_>,
    (cert_secret, cert_key): (&str, &str),
    (key_secret, key_key): (&str, &str),
) -> Result<Sensitive, VerifyError> {
    let (cluster, ns) = (secrets.cluster, secrets.namespace);
    let cert = read_secret_key(cluster, ns, cert_secret, cert_key).await?;
    let key = read_secret_key(cluster, ns, key_secret, key_key).await?;
    let not_pem = |secret: &str, key: &str, what| VerifyError::NotPem {
        secret: format!("{ns}/{secret}"),
        key: key.to_string(),
        what,
    };
    if !cert.expose().contains("-----BEGIN CERTIFICATE-----") {
        return Err(not_pem(cert_secret, cert_key, "certificate"));
    }
    if !key.expose().contains("PRIVATE KEY-----") {
        return Err(not_pem(key_secret, key_key, "private key"));
    }
    Ok(Sensitive::new(format!(
        "{}\n{}\n",
        cert.expose(),
        key.expose()
    )))
}

async fn read_secret_key(
    cluster: &crate::cluster::Cluster,
    ns: &str,
    name: &str,
    key: &str,
) -> Result<Sensitive, VerifyError> {
    use k8s_openapi::api::core::v1::Secret;
    let secret = format!("{ns}/{name}");
    let api: kube::Api<Secret> = kube::Api::namespaced(cluster.client().clone(), ns);
    let got = tokio::time::timeout(cluster.timeout(), api.get_opt(name))
        .await
        .map_err(|_| VerifyError::SecretTimeout {
            secret: secret.clone(),
        })?
        .map_err(|e| VerifyError::SecretUnreadable {
            secret: secret.clone(),
            why: crate::cluster::client::describe(&e),
        })?
        .ok_or_else(|| VerifyError::NoSecret {
            secret: secret.clone(),
        })?;
    let bytes = got
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| VerifyError::NoKey {
            secret: secret.clone(),
            key: key.to_string(),
        })?;
    String::from_utf8(bytes.0.clone())
        .map(|s| Sensitive::new(s.trim().to_string()))
        .map_err(|_| VerifyError::NotText {
            secret,
            key: key.to_string(),
        })
}

async fn token_request(
    cluster: &crate::cluster::Cluster,
    ns: &str,
    sa: &str,
    audiences: Vec<String>,
) -> Result<Sensitive, VerifyError> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let service_account = format!("{ns}/{sa}");
    let api: kube::Api<ServiceAccount> = kube::Api::namespaced(cluster.client().clone(), ns);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(audiences.clone()),
            expiration_seconds: Some(600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let reply = tokio::time::timeout(
        cluster.timeout(),
        api.create_token_request(sa, &kube::api::PostParams::default(), &request),
    )
    .await
    .map_err(|_| VerifyError::TokenRequestTimeout {
        service_account: service_account.clone(),
    })?
    .map_err(|e| VerifyError::TokenRequestRefused {
        service_account: service_account.clone(),
        audiences,
        why: crate::cluster::client::describe(&e),
    })?;
    reply
        .status
        .and_then(|s| s.token)
        .map(Sensitive::new)
        .ok_or(VerifyError::NoToken { service_account })
}
