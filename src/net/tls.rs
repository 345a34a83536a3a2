//! TLS with rustls: certificate and key from PEM files, optionally client
//! certificates checked against a CA (mTLS), reloadable while serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// TLS settings; empty paths leave TLS off.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first. With it (and `key_file`) the
    /// listener speaks only TLS.
    pub cert_file: PathBuf,
    /// PEM private key of the certificate.
    pub key_file: PathBuf,
    /// PEM CA certificates; when set, every client must present a
    /// certificate signed by one of them (mTLS).
    pub client_ca_file: PathBuf,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        !self.cert_file.as_os_str().is_empty() || !self.key_file.as_os_str().is_empty()
    }
}

/// Why TLS could not be set up; names the setting and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{setting}: must be set together with the other of tls.cert_file and tls.key_file")]
    Incomplete { setting: &'static str },
    #[error("{setting}: cannot read {path}: {message}")]
    File {
        setting: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{setting}: {path} holds no {what}")]
    Empty {
        setting: &'static str,
        path: PathBuf,
        what: &'static str,
    },
    #[error("tls: {0}")]
    Rustls(String),
}

/// The acceptor in use; [`reload`](Self::reload) swaps in a new one for
/// connections accepted from then on.
#[derive(Clone)]
pub struct ReloadableTls {
    config: TlsConfig,
    acceptor: Arc<RwLock<TlsAcceptor>>,
}

impl ReloadableTls {
    pub fn load(config: &TlsConfig) -> Result<Self, TlsError> {
        let acceptor = acceptor(config)?;
        Ok(ReloadableTls {
            config: config.clone(),
            acceptor: Arc::new(RwLock::new(acceptor)),
        })
    }

    /// Reads the files again; on error the acceptor in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = acceptor(&self.config)?;
        *self.acceptor.write() = fresh;
        Ok(())
    }

    pub fn current(&self) -> TlsAcceptor {
        self.acceptor.read().clone()
    }
}

fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    if config.cert_file.as_os_str().is_empty() {
        return Err(TlsError::Incomplete {
            setting: "tls.cert_file",
        });
    }
    if config.key_file.as_os_str().is_empty() {
        return Err(TlsError::Incomplete {
            setting: "tls.key_file",
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates("tls.cert_file", &config.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&config.key_file)
        .map_err(|error| file_error("tls.key_file", &config.key_file, error))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Rustls(error.to_string()))?;
    let builder = if config.client_ca_file.as_os_str().is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in certificates("tls.client_ca_file", &config.client_ca_file)? {
            roots
                .add(certificate)
                .map_err(|error| TlsError::Rustls(format!("tls.client_ca_file: {error}")))?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|error| TlsError::Rustls(format!("tls.client_ca_file: {error}")))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut server = builder
        .with_single_cert(chain, key)
        .map_err(|error| TlsError::Rustls(format!("tls.key_file: {error}")))?;
    // gRPC needs HTTP/2; browsers and curl may take either.
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn certificates(setting: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| file_error(setting, path, error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| file_error(setting, path, error))?;
    if certificates.is_empty() {
        return Err(TlsError::Empty {
            setting,
            path: path.to_path_buf(),
            what: "PEM certificate",
        });
    }
    Ok(certificates)
}

fn file_error(setting: &'static str, path: &Path, error: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        setting,
        path: path.to_path_buf(),
        message: error.to_string(),
    }
}
