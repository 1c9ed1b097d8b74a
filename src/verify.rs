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
    fn key(&self) -> Result<rcgen::KeyPair, String> {
        let fail = |e: &dyn std::fmt::Display| format!("cannot make a throwaway key: {e}");
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

/// Checks one Issuer against Vault with the given credentials: health,
/// login, a throwaway signature through `path`, the returned chain.
pub async fn check_issuer(
    addr: Addr,
    connection: &Connection,
    path: &str,
    credentials: &Credentials,
    probe: Probe,
) -> IssuerReport {
    let server = connection.server.as_str();
    let mut report = IssuerReport {
        addr,
        steps: Vec::new(),
    };
    let mut step = |what: &str, result: Result<String, String>| {
        let ok = result.is_ok();
        report.steps.push(Step {
            what: what.to_string(),
            result,
        });
        ok
    };

    // The Issuer's CA bundle, as a file for the TLS client (public data).
    let bundle_file = match connection
        .ca_bundle_pem
        .as_deref()
        .map(write_temp_pem)
        .transpose()
    {
        Ok(f) => f,
        Err(e) => {
            step(
                "vault",
                Err(format!("cannot use the Issuer's caBundle: {e}")),
            );
            return report;
        }
    };
    let settings = match VaultSettings::with_token(server, Source::Value(String::new())) {
        Ok(mut s) => {
            s.auth = credentials.auth_settings();
            s.ca_bundle = bundle_file.as_ref().map(|f| f.0.clone());
            s.namespace = connection.namespace.clone();
            s.client_identity = connection.client_identity.clone();
            s
        }
        Err(e) => {
            step("vault", Err(format!("{e}")));
            return report;
        }
    };
    let vault = match Vault::connect(&settings).await {
        Ok(v) => {
            step("vault", Ok(format!("{server} is initialized and unsealed")));
            step("login", Ok(credentials.describe()));
            v
        }
        Err(e) => {
            let text = crate::vault::error_chain(&e);
            let what = if text.contains("sealed")
                || text.contains("cannot reach")
                || text.contains("initialized")
            {
                "vault"
            } else {
                step("vault", Ok(format!("{server} answered")));
                "login"
            };
            let why = if what == "login" {
                format!(
                    "{text} (logging in with {}); {}",
                    credentials.describe(),
                    credentials.login_hint(&text)
                )
            } else {
                format!("{text} (logging in with {})", credentials.describe())
            };
            step(what, Err(why));
            return report;
        }
    };

    let key = match probe.key() {
        Ok(k) => k,
        Err(e) => {
            step("sign", Err(e));
            return report;
        }
    };
    let Probe {
        common_name: cn,
        uris,
        ..
    } = probe;
    let csr = match throwaway_csr(&key, cn.as_deref(), &uris) {
        Ok(c) => c,
        Err(e) => {
            step("sign", Err(e));
            return report;
        }
    };
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
            step(
                "sign",
                Err(format!("{path} answered without a certificate")),
            );
            return report;
        }
        Err(e) => {
            step(
                "sign",
                Err(format!(
                    "{}; check the role allows this name and the policy grants update on {path}",
                    crate::vault::error_chain(&e)
                )),
            );
            return report;
        }
    };
    let name = cn
        .clone()
        .or_else(|| uris.first().cloned())
        .unwrap_or_default();
    if !step(
        "sign",
        Ok(format!("signed a throwaway CSR for {name} through {path}")),
    ) {
        return report;
    }
    step("chain", check_chain(&signed, &key));
    report
}

fn throwaway_csr(
    key: &rcgen::KeyPair,
    cn: Option<&str>,
    uris: &[String],
) -> Result<String, String> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| format!("cannot build a CSR: {e}"))?;
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
        .map_err(|e| format!("cannot build a CSR: {e}"))
}

/// The leaf is for our key, is signed by `issuing_ca`, and each certificate
/// of `ca_chain` is signed by the next.
fn check_chain(signed: &Value, key: &rcgen::KeyPair) -> Result<String, String> {
    let pem = |k: &str| signed.get(k).and_then(Value::as_str).unwrap_or_default();
    let leaf = x509::parse_pem(pem("certificate")).map_err(|e| format!("leaf: {e}"))?;
    let issuing = x509::parse_pem(pem("issuing_ca")).map_err(|e| format!("issuing_ca: {e}"))?;
    if !x509::is_signed_by(&leaf.der, &issuing.der) {
        return Err(format!(
            "the leaf is not signed by the issuing CA {:?}",
            issuing.common_name
        ));
    }
    let spki = x509_parser::parse_x509_certificate(&leaf.der)
        .map(|(_, c)| c.public_key().raw.to_vec())
        .unwrap_or_default();
    if spki != key.subject_public_key_info() {
        return Err("the leaf does not carry the CSR's public key".into());
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
            return Err(format!(
                "ca_chain is broken: {:?} is not signed by {:?}",
                pair[0].common_name, pair[1].common_name
            ));
        }
        names.push(pair[1].common_name.clone());
    }
    names.dedup();
    if issuing.not_after < leaf.not_after {
        return Err(format!(
            "the issuing CA {:?} expires before the certificate it signed",
            issuing.common_name
        ));
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

/// Reads the credentials an Issuer names, as cert-manager would: from its
/// Secrets, or a TokenRequest for its ServiceAccount with the audience
/// cert-manager asks for (`vault://<namespace>/<issuer>`, `vault://<issuer>`
/// for a ClusterIssuer, plus `serviceAccountRef.audiences`).
pub async fn credentials(
    cluster: &crate::cluster::Cluster,
    issuer: &Value,
    cluster_resource_namespace: &str,
) -> Result<Credentials, String> {
    let name = issuer["metadata"]["name"].as_str().unwrap_or_default();
    let namespaced = issuer["metadata"]["namespace"].as_str();
    let ns = namespaced.unwrap_or(cluster_resource_namespace);
    let auth = &issuer["spec"]["vault"]["auth"];
    let secret = |r: &Value, default_key: &str| {
        let secret_name = r["name"].as_str().unwrap_or_default().to_string();
        let key = r["key"].as_str().unwrap_or(default_key).to_string();
        read_secret_key(cluster, ns.to_string(), secret_name, key)
    };
    if let Some(r) = auth.get("tokenSecretRef") {
        return Ok(Credentials::Token(secret(r, "token").await?));
    }
    if let Some(a) = auth.get("appRole") {
        return Ok(Credentials::AppRole {
            mount: a["path"]
                .as_str()
                .unwrap_or("approle")
                .trim_matches('/')
                .to_string(),
            role_id: a["roleId"].as_str().unwrap_or_default().to_string(),
            secret_id: secret(&a["secretRef"], "secretId").await?,
        });
    }
    if let Some(k) = auth.get("kubernetes") {
        let mount = k["mountPath"]
            .as_str()
            .unwrap_or("/v1/auth/kubernetes")
            .trim_start_matches("/v1/auth/")
            .trim_matches('/')
            .to_string();
        let role = k["role"].as_str().unwrap_or_default().to_string();
        let jwt = if let Some(r) = k.get("secretRef") {
            secret(r, "token").await?
        } else if let Some(sa) = k.get("serviceAccountRef") {
            let sa_name = sa["name"].as_str().unwrap_or_default();
            let mut audiences = vec![match namespaced {
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
            token_request(cluster, ns, sa_name, audiences).await?
        } else {
            return Err("auth.kubernetes names neither secretRef nor serviceAccountRef".into());
        };
        return Ok(Credentials::Kubernetes { mount, role, jwt });
    }
    if let Some(c) = auth.get("clientCertificate") {
        let mount = c["mountPath"]
            .as_str()
            .unwrap_or("/v1/auth/cert")
            .trim_start_matches("/v1/auth/")
            .trim_matches('/')
            .to_string();
        let name = c["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let (identity, from) = match c["secretName"].as_str().filter(|n| !n.is_empty()) {
            Some(secret) => (
                Some(tls_pair(cluster, ns, (secret, "tls.crt"), (secret, "tls.key")).await?),
                format!("certificate from Secret {ns}/{secret}"),
            ),
            None => {
                let vault = &issuer["spec"]["vault"];
                if vault.get("clientCertSecretRef").is_none() {
                    return Err(
                        "auth.clientCertificate names no certificate: set auth.clientCertificate.secretName \
                         (a kubernetes.io/tls Secret) or spec.vault.clientCertSecretRef and clientKeySecretRef"
                            .into(),
                    );
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
        return Ok(Credentials::Cert {
            mount,
            name,
            identity,
            from,
        });
    }
    Err("spec.vault.auth names no auth method certplane knows".into())
}

/// The client certificate and key an Issuer presents on every connection to
/// Vault (`clientCertSecretRef`, `clientKeySecretRef`), as cert-manager
/// reads them: keys `tls.crt` and `tls.key` unless the refs name others.
pub async fn client_identity(
    cluster: &crate::cluster::Cluster,
    issuer: &Value,
    cluster_resource_namespace: &str,
) -> Result<Option<Sensitive>, String> {
    let vault = &issuer["spec"]["vault"];
    let ns = issuer["metadata"]["namespace"]
        .as_str()
        .unwrap_or(cluster_resource_namespace);
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
            tls_pair(cluster, ns, (&cn, &ck), (&kn, &kk)).await.map(Some)
        }
        _ => Err(
            "spec.vault names only one of clientCertSecretRef and clientKeySecretRef; mutual TLS needs both".into(),
        ),
    }
}

/// A PEM certificate and key read from the cluster, as one identity.
async fn tls_pair(
    cluster: &crate::cluster::Cluster,
    ns: &str,
    (cert_secret, cert_key): (&str, &str),
    (key_secret, key_key): (&str, &str),
) -> Result<Sensitive, String> {
    let cert = read_secret_key(
        cluster,
        ns.to_string(),
        cert_secret.to_string(),
        cert_key.to_string(),
    )
    .await?;
    let key = read_secret_key(
        cluster,
        ns.to_string(),
        key_secret.to_string(),
        key_key.to_string(),
    )
    .await?;
    if !cert.expose().contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "Secret {ns}/{cert_secret} key {cert_key} holds no PEM certificate"
        ));
    }
    if !key.expose().contains("PRIVATE KEY-----") {
        return Err(format!(
            "Secret {ns}/{key_secret} key {key_key} holds no PEM private key"
        ));
    }
    Ok(Sensitive::new(format!(
        "{}\n{}\n",
        cert.expose(),
        key.expose()
    )))
}

async fn read_secret_key(
    cluster: &crate::cluster::Cluster,
    ns: String,
    name: String,
    key: String,
) -> Result<Sensitive, String> {
    use k8s_openapi::api::core::v1::Secret;
    let api: kube::Api<Secret> = kube::Api::namespaced(cluster.client().clone(), &ns);
    let got = tokio::time::timeout(cluster.timeout(), api.get_opt(&name))
        .await
        .map_err(|_| format!("reading Secret {ns}/{name} timed out"))?
        .map_err(|e| {
            format!(
                "cannot read Secret {ns}/{name}: {}",
                crate::cluster::client::describe(&e)
            )
        })?
        .ok_or_else(|| format!("Secret {ns}/{name} does not exist"))?;
    let bytes = got
        .data
        .as_ref()
        .and_then(|d| d.get(&key))
        .ok_or_else(|| format!("Secret {ns}/{name} has no key {key}"))?;
    String::from_utf8(bytes.0.clone())
        .map(|s| Sensitive::new(s.trim().to_string()))
        .map_err(|_| format!("Secret {ns}/{name} key {key} is not text"))
}

async fn token_request(
    cluster: &crate::cluster::Cluster,
    ns: &str,
    sa: &str,
    audiences: Vec<String>,
) -> Result<Sensitive, String> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
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
    .map_err(|_| format!("TokenRequest for {ns}/{sa} timed out"))?
    .map_err(|e| {
        format!(
            "TokenRequest for ServiceAccount {ns}/{sa} (audiences {audiences:?}) failed: {}",
            crate::cluster::client::describe(&e)
        )
    })?;
    reply
        .status
        .and_then(|s| s.token)
        .map(Sensitive::new)
        .ok_or_else(|| format!("TokenRequest for {ns}/{sa} returned no token"))
}
