//! Shared helpers of the integration tests: a real OpenBao dev server per
//! test ([`openbao::OpenBao`]), a fault-injecting proxy and a blackholed
//! port to put in front of it ([`proxy`]), a signed CI token for JWT login
//! ([`ci_jwt`]), and small builders.

#![allow(dead_code)] // Each test binary uses a different subset of the helpers.

pub mod openbao;
pub mod proxy;
pub mod reply_faults;
pub mod tls;
pub mod tokenreview;

pub use openbao::OpenBao;

use certplane::addr::Addr;
use certplane::model::{KeyType, Location};
use certplane::plan::{Action, CaChange, Change};
use certplane::state::{CaIdentity, CaMethod, DesiredCa, DesiredResource, Fields, ResourceKind};
use serde_json::Value;

/// Fields from a JSON object literal.
pub fn fields(v: Value) -> Fields {
    match v {
        Value::Object(m) => m.into_iter().collect(),
        other => panic!("not an object: {other}"),
    }
}

/// A desired resource without secrets or dependencies.
pub fn resource(path: &str, kind: ResourceKind, f: Value) -> DesiredResource {
    DesiredResource {
        addr: Addr::parse_vault(path).unwrap(),
        kind,
        fields: fields(f),
        secrets: Default::default(),
        depends_on: vec![],
        origin: Location {
            file: "test.yaml".into(),
            line: 1,
            column: 1,
        },
        ca: None,
    }
}

/// A change to a (non-issuer) resource.
pub fn change(
    path: &str,
    kind: ResourceKind,
    action: Action,
    before: Option<Value>,
    after: Option<Value>,
) -> Change {
    Change {
        addr: Addr::parse_vault(path).unwrap(),
        kind,
        action,
        before: before.map(fields),
        after: after.map(fields),
        sensitive: vec![],
        reason: None,
        ca: None,
        depends_on: vec![],
        manifest: None,
    }
}

/// A desired CA.
pub fn desired_ca(mount: &str, name: Option<&str>, cn: &str, method: CaMethod) -> DesiredCa {
    DesiredCa {
        mount: mount.into(),
        issuer_name: name.map(str::to_string),
        identity: CaIdentity {
            common_name: cn.into(),
            key_type: Some(KeyType::Ec),
            key_bits: Some(256),
            issued_by: None,
            cert_sha256: None,
        },
        method,
        ttl: None,
        rotate_before: None,
    }
}

/// An issuer change.
pub fn issuer_change(ca: DesiredCa, action: Action, existing_id: Option<&str>) -> Change {
    let path = format!(
        "{}/issuer/{}",
        ca.mount,
        ca.issuer_name.as_deref().unwrap_or("default")
    );
    Change {
        addr: Addr::parse_vault(&path).unwrap(),
        kind: ResourceKind::Issuer,
        action,
        before: None,
        after: Some(Fields::new()),
        sensitive: vec![],
        reason: None,
        ca: Some(CaChange {
            desired: ca,
            existing_id: existing_id.map(str::to_string),
            note: None,
            pending_key: None,
        }),
        depends_on: vec![],
        manifest: None,
    }
}

/// Root generate parameters.
pub fn root_params(cn: &str) -> Fields {
    fields(
        serde_json::json!({"common_name": cn, "key_type": "ec", "key_bits": 256, "ttl": 87600 * 3600}),
    )
}

/// An rcgen CA (certificate PEM, PKCS#8 key PEM).
pub fn rcgen_ca(cn: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2060, 1, 1);
    let cert = p.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Loads `yaml` as a one-file repository and applies its Vault half to
/// `bao` through the pipeline, with the root token.
pub async fn apply_yaml(
    bao: &OpenBao,
    yaml: &str,
) -> (certplane::pipeline::Prepared, certplane::vault::Vault) {
    apply_yaml_at(&bao.addr(), yaml).await
}

/// [`apply_yaml`] to the server at `addr` (root token `root`).
pub async fn apply_yaml_at(
    addr: &str,
    yaml: &str,
) -> (certplane::pipeline::Prepared, certplane::vault::Vault) {
    apply_files_at(addr, &[("repo.yaml", yaml)]).await
}

/// [`apply_yaml_at`] of a repository of several files (name, content): a
/// YAML file and the files it names, which must be inside the repository.
pub async fn apply_files_at(
    addr: &str,
    files: &[(&str, &str)],
) -> (certplane::pipeline::Prepared, certplane::vault::Vault) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let prepared = certplane::pipeline::prepare(dir.path()).unwrap_or_else(|d| panic!("{d}"));
    let settings = certplane::vault::VaultSettings::with_token(
        addr,
        certplane::model::Source::Value(openbao::ROOT_TOKEN.into()),
    )
    .unwrap();
    let vault = certplane::vault::Vault::connect(&settings).await.unwrap();
    let plan = certplane::pipeline::observe_and_plan(&vault, &prepared.desired)
        .await
        .unwrap();
    let secrets = certplane::vault::apply::secret_sources(&prepared.desired);
    certplane::vault::apply(&vault, &plan, &secrets, &mut |_| {})
        .await
        .unwrap();
    (prepared, vault)
}

fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// What a CI system gives a job for Vault's JWT auth, made real: enables
/// `auth/jwt` on `bao` trusting a fresh signing key, makes a role `role`
/// bound to `audience` whose tokens get a policy that may do anything, and
/// returns a token signed for that audience (what `CI_OIDC_TOKEN` holds).
pub fn ci_jwt(bao: &OpenBao, role: &str, audience: &str) -> String {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let signer =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let public_pem = rcgen::KeyPair::try_from(pkcs8.as_ref())
        .unwrap()
        .public_key_pem();
    let policy = bao.dir().join("ci-admin.hcl");
    std::fs::write(
        &policy,
        "path \"*\" {\n  capabilities = [\"create\", \"read\", \"update\", \"patch\", \"delete\", \"list\", \"sudo\"]\n}\n",
    )
    .unwrap();
    bao.bao_ok(&["policy", "write", "ci-admin", policy.to_str().unwrap()]);
    bao.bao_ok(&["auth", "enable", "jwt"]);
    bao.bao_ok(&[
        "write",
        "auth/jwt/config",
        &format!("jwt_validation_pubkeys={public_pem}"),
        "bound_issuer=https://ci.test",
    ]);
    bao.bao_ok(&[
        "write",
        &format!("auth/jwt/role/{role}"),
        "role_type=jwt",
        "user_claim=sub",
        &format!("bound_audiences={audience}"),
        "token_policies=ci-admin",
        "token_ttl=15m",
    ]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = b64url(br#"{"alg":"ES256","typ":"JWT"}"#);
    let claims = b64url(
        serde_json::json!({"iss": "https://ci.test", "sub": "repo:example/pki:ref:refs/heads/main",
            "aud": audience, "iat": now, "nbf": now - 10, "exp": now + 900})
        .to_string()
        .as_bytes(),
    );
    let signing_input = format!("{header}.{claims}");
    let sig = signer.sign(&rng, signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64url(sig.as_ref()))
}
