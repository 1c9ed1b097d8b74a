//! TLS to a real OpenBao: a listener with a private CA that requires client
//! certificates. The CA bundle makes the server trusted; the client
//! certificate gets certplane past mTLS; without either, a one-line error.

use certplane::model::Source;
use certplane::vault::{Vault, VaultSettings};

use crate::common::tls::TlsBao;

/// Root-token settings for the mutual-TLS listener, with the server's CA
/// and a client certificate it accepts, when asked for.
fn settings(s: &TlsBao, ca: bool, client: bool) -> VaultSettings {
    let mut v = VaultSettings::with_token(&s.tls_addr(), Source::Value("root".into())).unwrap();
    if ca {
        v.ca_bundle = Some(s.file("server-ca.pem", &s.server_ca_pem));
    }
    if client {
        v.client_cert = Some(s.file("client.pem", &s.client_a.cert_pem));
        v.client_key = Some(s.file("client.key", &s.client_a.key_pem));
    }
    v
}

#[tokio::test]
async fn ca_bundle_and_client_certificate_reach_an_mtls_listener() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = TlsBao::start();
    let vault = Vault::connect(&settings(&s, true, true))
        .await
        .unwrap_or_else(|e| panic!("{}", certplane::vault::error_chain(&e)));
    assert!(vault.read("sys/mounts").await.unwrap().is_some());

    // Without the client certificate the server refuses the handshake.
    let err = Vault::connect(&settings(&s, true, false))
        .await
        .unwrap_err();
    let text = certplane::vault::error_chain(&err);
    assert!(text.contains("cannot reach vault"), "{text}");
    assert!(!text.contains('\n'), "one line: {text}");

    // Without the CA bundle the server is not trusted.
    let err = Vault::connect(&settings(&s, false, true))
        .await
        .unwrap_err();
    let text = certplane::vault::error_chain(&err).to_lowercase();
    assert!(text.contains("certificate"), "{text}");
}
