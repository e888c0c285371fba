//! TLS for the daemon's listener (`--tls-cert/--tls-key`): a rustls server config on the
//! ring provider, as the client side does in `db/tls.rs`. Every failure names the file
//! and what to do.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::error::{Error, Result};
use crate::serve::config::Tls;

fn read(path: &Path, what: &str, flag: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::BadInput(format!(
            "cannot read the TLS {what} {}: {e}. Give a readable PEM file with {flag}",
            path.display()
        ))
    })
}

/// The certificate chain in a PEM file (the server's certificate first).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(path, "certificate", "--tls-cert")?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::BadInput(format!(
                "the TLS certificate {} is not valid PEM: {e}. Give a PEM file with \
                 -----BEGIN CERTIFICATE----- blocks with --tls-cert",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::BadInput(format!(
            "the TLS certificate {} holds no certificate. Give a PEM file with a \
             -----BEGIN CERTIFICATE----- block with --tls-cert",
            path.display()
        )));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = read(path, "key", "--tls-key")?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| {
            Error::BadInput(format!(
                "the TLS key {} is not valid PEM: {e}. Give the certificate's private key \
                 in PEM with --tls-key",
                path.display()
            ))
        })?
        .ok_or_else(|| {
            Error::BadInput(format!(
                "the TLS key {} holds no private key. Give the certificate's private key \
                 (-----BEGIN PRIVATE KEY-----) with --tls-key",
                path.display()
            ))
        })
}

/// The server config for `tls`: HTTP/1.1 only (the router speaks nothing else).
pub fn server_config(tls: &Tls) -> Result<Arc<ServerConfig>> {
    let certs = certificates(&tls.cert)?;
    let key = private_key(&tls.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::BadInput(format!(
                "the TLS key {} does not fit the certificate {}: {e}. Give the key the \
                 certificate was made for",
                tls.key.display(),
                tls.cert.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
