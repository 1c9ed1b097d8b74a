//! The compact, built-in schemas of cert-manager's `Issuer`/`ClusterIssuer`
//! and `Certificate` (cert-manager v1), for the fields certplane understands.
//!
//! They follow the real CRDs (cert-manager v1.21) field for field where
//! certplane reads the object (Vault, CA, self-signed and ACME issuers with
//! Cloudflare DNS-01; every Certificate field), and accept any content in
//! the subtrees certplane does not model (Venafi, AWS auth, other DNS
//! providers, HTTP-01 details, solver pod templates): the API server checks
//! those. `tests/crd_agreement.rs` compares these schemas with the real CRDs
//! on a table of objects. The extra keyword `x-certplane-exactly-one-of`
//! states the validating webhook's "exactly one" rules (see
//! [`crate::validate::crd`], which checks objects against them).

use std::sync::OnceLock;

use serde_json::{Value, json};

/// The built-in schema of a cert-manager kind (`Issuer`, `ClusterIssuer`,
/// `Certificate`), when certplane knows it.
pub fn builtin(kind: &str) -> Option<&'static Value> {
    static ISSUER: OnceLock<Value> = OnceLock::new();
    static CERTIFICATE: OnceLock<Value> = OnceLock::new();
    match kind {
        "Issuer" | "ClusterIssuer" => Some(ISSUER.get_or_init(issuer)),
        "Certificate" => Some(CERTIFICATE.get_or_init(certificate)),
        _ => None,
    }
}

fn string() -> Value {
    json!({"type": "string"})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

fn integer() -> Value {
    json!({"type": "integer"})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn string_map() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}})
}

/// Anything: checked by the API server, not by certplane.
fn opaque() -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

fn enumeration(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

/// `{name, key}` with `name` required.
fn secret_key_selector() -> Value {
    json!({"type": "object", "required": ["name"],
        "properties": {"name": string(), "key": string()}})
}

fn service_account_ref() -> Value {
    json!({"type": "object", "required": ["name"],
        "properties": {"name": string(), "audiences": strings()}})
}

fn object(required: &[&str], properties: Value) -> Value {
    let mut o = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

fn vault() -> Value {
    let mut auth = object(
        &[],
        json!({
            "tokenSecretRef": secret_key_selector(),
            "appRole": object(&["path", "roleId", "secretRef"], json!({
                "path": string(),
                "roleId": string(),
                "secretRef": secret_key_selector(),
            })),
            "clientCertificate": object(&[], json!({
                "mountPath": string(),
                "name": string(),
                "secretName": string(),
            })),
            "kubernetes": {
                "type": "object",
                "required": ["role"],
                "x-certplane-exactly-one-of": ["secretRef", "serviceAccountRef"],
                "properties": {
                    "mountPath": string(),
                    "role": string(),
                    "secretRef": secret_key_selector(),
                    "serviceAccountRef": service_account_ref(),
                },
            },
            "aws": opaque(),
        }),
    );
    auth["x-certplane-exactly-one-of"] = json!([
        "tokenSecretRef",
        "appRole",
        "clientCertificate",
        "kubernetes",
        "aws"
    ]);
    object(
        &["auth", "path", "server"],
        json!({
            "auth": auth,
            "caBundle": {"type": "string", "format": "byte"},
            "caBundleSecretRef": secret_key_selector(),
            "clientCertSecretRef": secret_key_selector(),
            "clientKeySecretRef": secret_key_selector(),
            "namespace": string(),
            "path": string(),
            "server": string(),
            "serverName": string(),
        }),
    )
}

fn acme() -> Value {
    let dns01 = object(
        &[],
        json!({
            "cloudflare": object(&[], json!({
                "email": string(),
                "apiTokenSecretRef": secret_key_selector(),
                "apiKeySecretRef": secret_key_selector(),
            })),
            "cnameStrategy": enumeration(&["None", "Follow"]),
            "acmeDNS": opaque(),
            "akamai": opaque(),
            "azureDNS": opaque(),
            "cloudDNS": opaque(),
            "digitalocean": opaque(),
            "rfc2136": opaque(),
            "route53": opaque(),
            "webhook": opaque(),
        }),
    );
    let solver = object(
        &[],
        json!({
            "selector": object(&[], json!({
                "dnsNames": strings(),
                "dnsZones": strings(),
                "matchLabels": string_map(),
            })),
            "http01": opaque(),
            "dns01": dns01,
            "waitInsteadOfSelfCheck": string(),
        }),
    );
    object(
        &["privateKeySecretRef", "server"],
        json!({
            "caBundle": {"type": "string", "format": "byte"},
            "disableAccountKeyGeneration": boolean(),
            "email": string(),
            "enableDurationFeature": boolean(),
            "externalAccountBinding": opaque(),
            "preferredChain": {"type": "string", "maxLength": 64},
            "privateKeySecretRef": secret_key_selector(),
            "profile": string(),
            "server": string(),
            "skipTLSVerify": boolean(),
            "solvers": {"type": "array", "items": solver},
        }),
    )
}

/// The envelope shared by every kind: `spec` is checked, `status` is the
/// controller's.
fn envelope(required: &[&str], spec: Value) -> Value {
    let mut o = object(
        required,
        json!({
            "apiVersion": string(),
            "kind": string(),
            "metadata": opaque(),
            "spec": spec,
            "status": opaque(),
        }),
    );
    o["x-kubernetes-preserve-unknown-fields"] = json!(false);
    o
}

/// `Issuer` and `ClusterIssuer` (the same schema).
pub fn issuer() -> Value {
    let mut spec = object(
        &[],
        json!({
            "acme": acme(),
            "ca": object(&["secretName"], json!({
                "secretName": string(),
                "crlDistributionPoints": strings(),
                "issuingCertificateURLs": strings(),
                "ocspServers": strings(),
            })),
            "selfSigned": object(&[], json!({"crlDistributionPoints": strings()})),
            "vault": vault(),
            "venafi": opaque(),
        }),
    );
    spec["x-certplane-exactly-one-of"] = json!(["acme", "ca", "selfSigned", "vault", "venafi"]);
    envelope(&["spec"], spec)
}

/// Key usages cert-manager knows.
pub const USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

/// `Certificate`.
pub fn certificate() -> Value {
    let spec = object(
        &["issuerRef", "secretName"],
        json!({
            "additionalOutputFormats": {"type": "array", "items": object(&["type"], json!({
                "type": enumeration(&["DER", "CombinedPEM"]),
            }))},
            "commonName": string(),
            "dnsNames": strings(),
            "duration": string(),
            "emailAddresses": strings(),
            "encodeUsagesInRequest": boolean(),
            "ipAddresses": strings(),
            "isCA": boolean(),
            "issuerRef": object(&["name"], json!({
                "name": string(), "kind": string(), "group": string(),
            })),
            "keystores": opaque(),
            "literalSubject": string(),
            "nameConstraints": opaque(),
            "otherNames": {"type": "array", "items": object(&[], json!({
                "oid": string(), "utf8Value": string(),
            }))},
            "privateKey": object(&[], json!({
                "algorithm": enumeration(&["RSA", "ECDSA", "Ed25519"]),
                "encoding": enumeration(&["PKCS1", "PKCS8"]),
                "rotationPolicy": enumeration(&["Never", "Always"]),
                "size": integer(),
            })),
            "renewBefore": string(),
            "renewBeforePercentage": integer(),
            "renewal": opaque(),
            "revisionHistoryLimit": integer(),
            "secretName": string(),
            "secretTemplate": object(&[], json!({
                "annotations": string_map(),
                "labels": string_map(),
            })),
            "signatureAlgorithm": enumeration(&[
                "SHA256WithRSA", "SHA384WithRSA", "SHA512WithRSA",
                "ECDSAWithSHA256", "ECDSAWithSHA384", "ECDSAWithSHA512", "PureEd25519",
            ]),
            "subject": object(&[], json!({
                "countries": strings(),
                "localities": strings(),
                "organizationalUnits": strings(),
                "organizations": strings(),
                "postalCodes": strings(),
                "provinces": strings(),
                "serialNumber": string(),
                "streetAddresses": strings(),
            })),
            "uris": strings(),
            "usages": {"type": "array", "items": enumeration(USAGES)},
        }),
    );
    envelope(&[], spec)
}
