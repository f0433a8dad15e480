//! A throwaway CA and a server certificate for 127.0.0.1/localhost, as the HTTPS stand-ins (fake Slack, fake Kubernetes API) serve them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

/// The CA clients must trust, and the server's rustls config (HTTP/1.1).
pub struct TestTls {
    pub ca_pem: String,
    pub server: rustls::ServerConfig,
}

pub fn server_tls() -> TestTls {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let pk = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], pk)
        .unwrap();
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    TestTls {
        ca_pem: ca.pem(),
        server,
    }
}
