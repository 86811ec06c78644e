//! HTTPS and WSS (`--tls-cert FILE --tls-key FILE`): rustls with the ring provider, the
//! same TLS stack as `rediss://`.
//!
//! The certificate chain and key are PEM files. SIGHUP reads them again: connections
//! accepted from then on use the new certificate, and the open ones keep theirs, so a
//! renewal (certbot, cert-manager) never drops anyone. A reload that fails (a file half
//! written, a key that does not match) keeps the certificate in use and says why in the
//! log. The TLS handshake runs on each connection's own task (see `listener.rs`), never in
//! the accept loop, and within the handshake timeout like any pending request.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or held no usable item.
    #[error("cannot read {path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// One of `--tls-cert` and `--tls-key` was given without the other.
    #[error("--{missing} is missing: HTTPS needs both --tls-cert and --tls-key")]
    Incomplete {
        /// The flag not given.
        missing: &'static str,
    },
    /// rustls refused the pair (a key that does not match the certificate, say).
    #[error("cannot use the certificate and key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The acceptor in use, replaced whole on SIGHUP.
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<TlsAcceptor>,
}

impl Certificates {
    /// Reads the certificate chain and key; fails if they cannot serve.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let acceptor = acceptor(cert, key)?;
        Ok(Arc::new(Certificates {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(acceptor),
        }))
    }

    /// The acceptor for a connection accepted now.
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.current.read().ok().map(|acceptor| acceptor.clone())
    }

    /// Reads the files again; on failure the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = acceptor(&self.cert, &self.key)?;
        if let Ok(mut current) = self.current.write() {
            *current = fresh;
        }
        Ok(())
    }

    /// Reloads on every SIGHUP, for as long as the process runs.
    pub fn reload_on_sighup(self: &Arc<Self>) -> std::io::Result<()> {
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let certificates = self.clone();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match certificates.reload() {
                    Ok(()) => tracing::info!(
                        cert = %certificates.cert.display(),
                        "SIGHUP: new connections use the certificate read again"
                    ),
                    Err(error) => tracing::warn!(
                        %error,
                        "SIGHUP: cannot read the certificate again; the one in use stays"
                    ),
                }
            }
        });
        Ok(())
    }
}

fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let pem_error = |path: &Path| {
        let path = path.to_owned();
        move |error: rustls::pki_types::pem::Error| TlsError::Pem {
            path: path.clone(),
            reason: error.to_string(),
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(pem_error(cert))?
        .collect::<Result<_, _>>()
        .map_err(pem_error(cert))?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: cert.to_owned(),
            reason: "no certificate in it".to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem_error(key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    // WebSockets upgrade over HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
