//! TLS for the webhook listener: server certificate, and client-certificate verification for mTLS.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use super::webhook::WebhookError;
use crate::config::WebhookTls;

fn read(path: &std::path::Path) -> Result<Vec<u8>, WebhookError> {
    std::fs::read(path).map_err(|source| WebhookError::TlsFile {
        path: path.display().to_string(),
        source,
    })
}

/// Builds the rustls server config; with `client_ca`, clients must present a certificate it signed.
pub fn server_config(tls: &WebhookTls) -> Result<ServerConfig, WebhookError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<_> = rustls_pemfile::certs(&mut read(&tls.cert)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| WebhookError::Tls(format!("{}: {e}", tls.cert.display())))?;
    if certs.is_empty() {
        return Err(WebhookError::Tls(format!(
            "{}: no certificate found",
            tls.cert.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut read(&tls.key)?.as_slice())
        .map_err(|e| WebhookError::Tls(format!("{}: {e}", tls.key.display())))?
        .ok_or_else(|| WebhookError::Tls(format!("{}: no private key found", tls.key.display())))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Tls(e.to_string()))?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut read(ca)?.as_slice()) {
                let cert = cert.map_err(|e| WebhookError::Tls(format!("{}: {e}", ca.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| WebhookError::Tls(format!("{}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| WebhookError::Tls(format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| WebhookError::Tls(e.to_string()))
}
