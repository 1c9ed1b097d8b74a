//! JWTs as a CI system issues them for Vault's JWT auth: signed with a key
//! of the test's own, whose public half Vault is told to trust.

use base64::Engine as _;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

use super::OpenBao;

/// A signing key (ES256) for JWTs.
pub struct Signer {
    key: EcdsaKeyPair,
    public_pem: String,
    rng: ring::rand::SystemRandom,
}

impl Signer {
    /// A fresh key.
    pub fn new() -> Signer {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let public_pem = rcgen::KeyPair::try_from(pkcs8.as_ref())
            .unwrap()
            .public_key_pem();
        Signer {
            key,
            public_pem,
            rng,
        }
    }

    /// The public key (PEM): Vault's `jwt_validation_pubkeys`.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// A token from issuer `https://ci.test` for `sub` and `aud`, valid for
    /// `ttl_secs` from now.
    pub fn token(&self, sub: &str, aud: &str, ttl_secs: u64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        self.sign(&json!({"iss": "https://ci.test", "sub": sub, "aud": aud,
            "iat": now, "nbf": now - 10, "exp": now + ttl_secs}))
    }

    /// `claims` signed: `header.claims.signature`.
    pub fn sign(&self, claims: &Value) -> String {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let header = b64(br#"{"alg":"ES256","typ":"JWT"}"#);
        let claims = b64(claims.to_string().as_bytes());
        let signing_input = format!("{header}.{claims}");
        let sig = self.key.sign(&self.rng, signing_input.as_bytes()).unwrap();
        format!("{signing_input}.{}", b64(sig.as_ref()))
    }
}

/// What a CI system gives a job for Vault's JWT auth, made real: enables
/// `auth/jwt` on `bao` trusting a fresh signing key, makes a role `role`
/// bound to `audience` whose tokens get a policy that may do anything, and
/// returns a token signed for that audience (what `CI_OIDC_TOKEN` holds).
pub fn ci_jwt(bao: &OpenBao, role: &str, audience: &str) -> String {
    let signer = Signer::new();
    let policy = bao.dir().join("ci-admin.hcl");
    std::fs::write(&policy, super::openbao::ADMIN_POLICY).unwrap();
    bao.bao_ok(&["policy", "write", "ci-admin", policy.to_str().unwrap()]);
    bao.bao_ok(&["auth", "enable", "jwt"]);
    bao.bao_ok(&[
        "write",
        "auth/jwt/config",
        &format!("jwt_validation_pubkeys={}", signer.public_pem()),
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
    signer.token("repo:example/pki:ref:refs/heads/main", audience, 900)
}
