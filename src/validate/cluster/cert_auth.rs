//! TLS certificate auth of a Vault Issuer (`auth.clientCertificate`): the
//! cert auth mount it logs in at, the `CertAuthRole` that admits it (the one
//! it names, or, without a name, one of the mount's: Vault tries each), the
//! role's policies, and, when the client certificate is in the repository
//! (a declared Secret holding `tls.crt`), that the role's certificate
//! trusts it: is it, or signed it or a certificate of its chain.

use base64::Engine as _;

use super::{Checker, IssuerCtx};
use crate::diagnostic::suggest;
use crate::model::certmanager::{VaultClientCertificate, VaultIssuer};
use crate::model::{AuthType, CertAuthRoleSpec, Meta, Origin};
use crate::pki::x509;
use crate::validate::acl;

/// Where the login's client certificate is: a Secret, its key, and the
/// field that names it.
struct ClientCert {
    secret: String,
    key: String,
    at: String,
}

impl<'a> Checker<'a> {
    /// Checks an Issuer's certificate auth.
    pub(super) fn cert_auth(&self, i: &IssuerCtx<'_>, v: &VaultIssuer, c: &VaultClientCertificate) {
        let (origin, what, res_ns, sign_path) = (
            i.origin,
            i.what.as_str(),
            i.res_ns.as_str(),
            i.sign_path.as_str(),
        );
        let base = "spec.vault.auth.clientCertificate";
        let Some(mount) = self.cert_mount(origin, what, base, c) else {
            return;
        };
        let repo = self.repo;
        let roles: Vec<(&'a Meta, &'a CertAuthRoleSpec)> = repo
            .cert_auth_roles()
            .filter(|(_, _, s)| s.mount == mount)
            .map(|(m, _, s)| (m, s))
            .collect();
        let live_role = |name: &str| {
            self.live
                .is_some_and(|l| l.auth_roles.contains(&(mount.clone(), name.to_string())))
        };
        let candidates = match &c.name {
            Some(name) => match roles.iter().find(|(m, _)| m.name == *name) {
                Some(r) => vec![*r],
                None if live_role(name) => return,
                None => {
                    let names: Vec<&str> = roles.iter().map(|(m, _)| m.name.as_str()).collect();
                    self.push(
                        origin,
                        &format!("{base}.name"),
                        format!("{what}: {name} is not a CertAuthRole on auth mount {mount}"),
                        suggest::did_you_mean(name, names.iter().copied()),
                    );
                    return;
                }
            },
            None if roles.is_empty() => {
                if self.live.is_none_or(|l| !l.auth_mounts.contains(&mount)) {
                    self.push(
                        origin,
                        base,
                        format!(
                            "{what}: auth mount {mount} has no CertAuthRole to log in with"
                        ),
                        format!(
                            "declare a CertAuthRole with mount: {mount} whose certificateFile is the CA of the Issuer's client certificate, and name it in clientCertificate.name"
                        ),
                    );
                }
                return;
            }
            None => roles,
        };
        let candidates = match self.client_cert(res_ns, v, c) {
            Some((cert, chain)) => {
                let trusting: Vec<_> = candidates
                    .iter()
                    .copied()
                    .filter(|(_, s)| trusts(s, &chain))
                    .collect();
                if trusting.is_empty() {
                    self.untrusted(origin, what, &mount, res_ns, &cert, &candidates, &chain);
                    return;
                }
                trusting
            }
            None => candidates,
        };
        let grants = |s: &CertAuthRoleSpec| {
            let declared: Vec<&crate::model::PolicySpec> = s
                .token_policies
                .iter()
                .flatten()
                .filter_map(|p| repo.policies().find(|(m, _, _)| m.name == *p))
                .map(|(_, _, spec)| spec)
                .collect();
            acl::grants_update(&declared, sign_path)
        };
        if !candidates.iter().any(|(_, s)| grants(s)) {
            let (meta, spec) = candidates[0];
            let role = format!("CertAuthRole {}", meta.name);
            let policies = spec.token_policies.clone().unwrap_or_default();
            self.grants(i, &role, &policies);
        }
    }

    /// The cert auth mount of `mountPath` (default `/v1/auth/cert`): a
    /// declared AuthMount of type cert, or one the live Vault has. `None`
    /// (reported, unless live) when it is neither.
    fn cert_mount(
        &self,
        origin: &Origin,
        what: &str,
        base: &str,
        c: &VaultClientCertificate,
    ) -> Option<String> {
        let mount_path = c.mount_path.as_deref().unwrap_or("/v1/auth/cert");
        let at = if c.mount_path.is_some() {
            format!("{base}.mountPath")
        } else {
            base.to_string()
        };
        let Some(mount) = mount_path
            .trim_end_matches('/')
            .strip_prefix("/v1/auth/")
            .filter(|m| !m.is_empty())
        else {
            self.push(
                origin,
                &at,
                format!("{what}: mountPath {mount_path:?} is not /v1/auth/<mount>"),
                "write the auth mount as /v1/auth/cert (cert-manager calls <mountPath>/login)",
            );
            return None;
        };
        let live = self.live.is_some_and(|l| l.auth_mounts.contains(mount));
        match self.repo.auth_mount(mount) {
            None if live => None,
            None => {
                let of_type: Vec<&str> = self
                    .repo
                    .auth_mounts()
                    .filter(|(_, _, s)| s.auth_type == AuthType::Cert)
                    .map(|(m, _, _)| m.name.as_str())
                    .collect();
                self.push(
                    origin,
                    &at,
                    format!("{what}: auth mount {mount} is not a declared AuthMount"),
                    match suggest::closest(mount, of_type.iter().copied()) {
                        Some(c) => format!("did you mean /v1/auth/{c}?"),
                        None => format!("declare an AuthMount {mount} with type: cert"),
                    },
                );
                None
            }
            Some((_, _, m)) if m.auth_type != AuthType::Cert => {
                self.push(
                    origin,
                    &at,
                    format!(
                        "{what}: auth mount {mount} is of type {}, not cert",
                        m.auth_type.as_str()
                    ),
                    "point mountPath at a cert auth mount",
                );
                None
            }
            Some(_) => Some(mount.to_string()),
        }
    }

    /// The client certificate the login presents, with its chain (DER,
    /// leaf first), when the repository declares the Secret holding it:
    /// `secretName`'s `tls.crt`, else `clientCertSecretRef`'s.
    fn client_cert(
        &self,
        res_ns: &str,
        v: &VaultIssuer,
        c: &VaultClientCertificate,
    ) -> Option<(ClientCert, Vec<Vec<u8>>)> {
        let cert = match (&c.secret_name, &v.client_cert_secret_ref) {
            (Some(name), _) => ClientCert {
                secret: name.clone(),
                key: "tls.crt".into(),
                at: "spec.vault.auth.clientCertificate.secretName".into(),
            },
            (None, Some(r)) => ClientCert {
                secret: r.name.clone(),
                key: r.key.clone().unwrap_or_else(|| "tls.crt".into()),
                at: "spec.vault.clientCertSecretRef".into(),
            },
            (None, None) => return None,
        };
        let (obj, _) = self.secret(res_ns, &cert.secret)?;
        let manifest = &obj.m.spec;
        let pem = match (
            manifest["stringData"][&cert.key].as_str(),
            manifest["data"][&cert.key].as_str(),
        ) {
            (Some(text), _) => text.to_string(),
            (None, Some(b64)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .ok()?;
                String::from_utf8(bytes).ok()?
            }
            (None, None) => return None,
        };
        let chain = x509::pem_certificates(&pem).ok()?;
        (!chain.is_empty()).then_some((cert, chain))
    }

    /// Reports a client certificate that none of the candidate roles
    /// trusts, naming who issued it.
    #[allow(clippy::too_many_arguments)] // One call site; each is a different thing.
    fn untrusted(
        &self,
        origin: &Origin,
        what: &str,
        mount: &str,
        ns: &str,
        cert: &ClientCert,
        candidates: &[(&Meta, &CertAuthRoleSpec)],
        chain: &[Vec<u8>],
    ) {
        let issuer = x509::parse_der(&chain[0])
            .map(|i| i.issued_by)
            .unwrap_or_default();
        let roles = match candidates {
            [(meta, _)] => format!("CertAuthRole {}", meta.name),
            _ => format!("no CertAuthRole on auth mount {mount}"),
        };
        let verb = if candidates.len() == 1 {
            "does not trust"
        } else {
            "trusts"
        };
        self.push(
            origin,
            &cert.at,
            format!(
                "{what}: {roles} {verb} the client certificate in Secret {ns}/{} (key {}, issued by {issuer:?}): Vault would refuse the login",
                cert.secret, cert.key
            ),
            "set the role's certificateFile to the CA that signed the client certificate, or give the Issuer a certificate that CA signed",
        );
    }
}

/// Whether a role trusts a client certificate chain (DER, leaf first): its
/// certificate is one of the chain, or signed one of them. An unreadable
/// certificate file trusts nothing (it is reported on its own).
fn trusts(role: &CertAuthRoleSpec, chain: &[Vec<u8>]) -> bool {
    let Ok(text) = std::fs::read_to_string(&role.certificate_file) else {
        return false;
    };
    let Ok(trusted) = x509::pem_certificates(&text) else {
        return false;
    };
    trusted
        .iter()
        .any(|t| chain.iter().any(|c| c == t || x509::is_signed_by(c, t)))
}

#[cfg(test)]
mod tests {
    use crate::diagnostic::Diagnostic;

    /// A CA (certificate PEM and the issuer to sign with).
    fn ca(cn: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let pem = p.self_signed(&key).unwrap().pem();
        (pem, rcgen::Issuer::new(p, key))
    }

    /// A certificate signed by `by`: a client's, or a sub-CA's.
    fn signed(
        cn: &str,
        by: &rcgen::Issuer<'static, rcgen::KeyPair>,
        is_ca: bool,
    ) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec![cn.to_string()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        if is_ca {
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        let pem = p.signed_by(&key, by).unwrap().pem();
        (pem, rcgen::Issuer::new(p, key))
    }

    const VAULT: &str = r#"
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec:
  maxLeaseTTL: 87600h
  ca: {root: {commonName: Root, keyType: ec, ttl: 87600h}}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiRole
metadata: {name: web}
spec: {mount: pki, allowedDomains: [example.com], allowSubdomains: true, maxTTL: 720h}
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {name: sign}
spec: {rules: [{path: pki/sign/web, capabilities: [update]}]}
---
apiVersion: certplane.dev/v1alpha1
kind: Policy
metadata: {name: read-only}
spec: {rules: [{path: pki/*, capabilities: [read]}]}
---
apiVersion: certplane.dev/v1alpha1
kind: AuthMount
metadata: {name: cert}
spec: {type: cert}
---
apiVersion: certplane.dev/v1alpha1
kind: AuthMount
metadata: {name: approle}
spec: {type: approle}
"#;

    /// A role on `mount` trusting `certificate_file`, with `policies`.
    fn role(name: &str, mount: &str, certificate_file: &str, policies: &str) -> String {
        format!(
            "---\napiVersion: certplane.dev/v1alpha1\nkind: CertAuthRole\nmetadata: {{name: {name}}}\n\
             spec: {{mount: {mount}, certificateFile: {certificate_file}, tokenPolicies: [{policies}]}}\n"
        )
    }

    /// An Issuer logging in with `client_certificate`, and the Secret
    /// holding its certificate chain (`tls.crt`, PEM in `stringData`).
    fn cluster(client_certificate: &str, tls_crt: &str) -> String {
        let indented: String = tls_crt.lines().map(|l| format!("      {l}\n")).collect();
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: sandbox}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: client-tls, namespace: sandbox}}\n\
             type: kubernetes.io/tls\nstringData:\n  tls.key: placeholder\n  tls.crt: |\n{indented}---\n\
             apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {{name: vault-issuer, namespace: sandbox}}\n\
             spec:\n  vault:\n    server: https://vault.vault:8200\n    path: pki/sign/web\n\
             \x20   auth:\n      clientCertificate: {client_certificate}\n"
        )
    }

    /// Validates a repository of these files; the messages found.
    fn validate(files: &[(&str, &str)]) -> Vec<Diagnostic> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let mut repo = crate::load::load(dir.path()).unwrap_or_else(|d| panic!("{d}"));
        crate::expand::expand(&mut repo).unwrap_or_else(|d| panic!("{d}"));
        crate::validate::validate(&repo)
    }

    fn messages(d: &[Diagnostic]) -> String {
        d.iter()
            .map(|d| format!("{}: {}\n", d.location, d.message))
            .collect()
    }

    #[test]
    fn a_role_whose_ca_signed_the_client_chain_admits_the_issuer() {
        let (a, a_issuer) = ca("Client CA A");
        let (a1, a1_issuer) = signed("Client Sub-CA A1", &a_issuer, true);
        let (client, _) = signed("cert-manager", &a1_issuer, false);
        let chain = format!("{client}{a1}");
        let vault = format!("{VAULT}{}", role("cm", "cert", "a.pem", "sign"));
        let d = validate(&[
            ("vault.yaml", &vault),
            ("a.pem", &a),
            (
                "cluster.yaml",
                &cluster("{name: cm, secretName: client-tls}", &chain),
            ),
        ]);
        assert!(d.is_empty(), "{}", messages(&d));
        // Without a name, Vault tries every role of the mount: one that
        // trusts the certificate and grants the sign path is enough.
        let (b, _) = ca("Client CA B");
        let vault = format!(
            "{VAULT}{}{}",
            role("other", "cert", "b.pem", "read-only"),
            role("cm", "cert", "a.pem", "sign")
        );
        let d = validate(&[
            ("vault.yaml", &vault),
            ("a.pem", &a),
            ("b.pem", &b),
            ("cluster.yaml", &cluster("{secretName: client-tls}", &chain)),
        ]);
        assert!(d.is_empty(), "{}", messages(&d));
    }

    #[test]
    fn a_client_certificate_of_another_ca_is_refused_naming_its_issuer() {
        let (a, _) = ca("Client CA A");
        let (_, b_issuer) = ca("Client CA B");
        let (client, _) = signed("cert-manager", &b_issuer, false);
        let vault = format!("{VAULT}{}", role("cm", "cert", "a.pem", "sign"));
        let d = validate(&[
            ("vault.yaml", &vault),
            ("a.pem", &a),
            (
                "cluster.yaml",
                &cluster("{name: cm, secretName: client-tls}", &client),
            ),
        ]);
        let text = messages(&d);
        assert_eq!(d.len(), 1, "{text}");
        assert!(
            text.contains(
                "Issuer sandbox/vault-issuer: CertAuthRole cm does not trust the client certificate in Secret sandbox/client-tls (key tls.crt, issued by \"Client CA B\")"
            ),
            "{text}"
        );
        assert!(d[0].location.line > 1, "at the secretName: {text}");
    }

    #[test]
    fn the_role_must_exist_on_a_cert_mount_and_grant_the_sign_path() {
        let (a, a_issuer) = ca("Client CA A");
        let (client, _) = signed("cert-manager", &a_issuer, false);
        let vault = format!(
            "{VAULT}{}{}",
            role("cm", "cert", "a.pem", "read-only"),
            role("wrong", "approle", "a.pem", "sign")
        );
        let check = |client_certificate: &str| {
            messages(&validate(&[
                ("vault.yaml", &vault),
                ("a.pem", &a),
                ("cluster.yaml", &cluster(client_certificate, &client)),
            ]))
        };
        let text = check("{name: cm}");
        assert!(
            text.contains(
                "the policies of CertAuthRole cm (read-only) do not grant update on pki/sign/web"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "CertAuthRole wrong needs an auth mount of type cert, but approle is of type approle"
            ),
            "{text}"
        );
        let text = check("{name: cn}");
        assert!(
            text.contains("cn is not a CertAuthRole on auth mount cert"),
            "{text}"
        );
        let text = check("{name: cm, mountPath: /v1/auth/approle}");
        assert!(
            text.contains("auth mount approle is of type approle, not cert"),
            "{text}"
        );
        let text = check("{name: cm, mountPath: /v1/auth/crt}");
        assert!(
            text.contains("auth mount crt is not a declared AuthMount"),
            "{text}"
        );
    }

    #[test]
    fn a_role_name_vault_would_fold_is_refused() {
        let (a, _) = ca("Client CA A");
        let vault = format!("{VAULT}{}", role("Cert-Manager", "cert", "a.pem", "sign"));
        let text = messages(&validate(&[("vault.yaml", &vault), ("a.pem", &a)]));
        assert!(
            text.contains(
                "CertAuthRole name \"Cert-Manager\" has upper-case letters: Vault stores auth role names in lower case"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_role_certificate_that_is_not_a_certificate_is_reported() {
        let vault = format!("{VAULT}{}", role("cm", "cert", "a.pem", "sign"));
        let d = validate(&[("vault.yaml", &vault), ("a.pem", "not a certificate\n")]);
        let text = messages(&d);
        assert!(text.contains("CertAuthRole cm:"), "{text}");
        assert!(text.contains("a.pem"), "{text}");
    }
}
