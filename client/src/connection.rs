//! How a client reaches taskd: plaintext or TLS (with a CA file, and a
//! client certificate for mTLS), with or without a bearer token. Every stub
//! made from a [`Transport`] sends the token on every call.

use std::path::PathBuf;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::{ClientError, ClientResult};

/// A connection with its credentials: what every stub of this crate runs
/// on. Cheap to clone; clones share the connection.
pub type Transport = InterceptedService<Channel, Credentials>;

/// Adds `authorization: Bearer <token>` to each call. Its `Debug` never
/// shows the token.
#[derive(Clone, Default)]
pub struct Credentials {
    authorization: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Credentials")
            .field("token", &self.authorization.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

impl Credentials {
    pub fn bearer(token: &str) -> ClientResult<Self> {
        let value = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| ClientError::Config("token: must be printable ASCII".to_string()))?;
        Ok(Credentials {
            authorization: Some(value),
        })
    }
}

impl Interceptor for Credentials {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.authorization {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// How to connect, beyond the address.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// Bearer token sent with every call.
    pub token: Option<String>,
    /// PEM CA certificates that signed the server's certificate (for
    /// `https://` addresses; without it the system's roots are used).
    pub ca_file: Option<PathBuf>,
    /// PEM certificate and key presented to a server that asks for client
    /// certificates (mTLS).
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// The name to check the server's certificate against, when it is not
    /// the address's host.
    pub server_name: Option<String>,
}

impl ConnectOptions {
    /// Options from TASKD_TOKEN, TASKD_CA_FILE, TASKD_CLIENT_CERT and
    /// TASKD_CLIENT_KEY, where set.
    pub fn from_env() -> Self {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        ConnectOptions {
            token: std::env::var("TASKD_TOKEN").ok().filter(|token| !token.is_empty()),
            ca_file: path("TASKD_CA_FILE"),
            client_cert_file: path("TASKD_CLIENT_CERT"),
            client_key_file: path("TASKD_CLIENT_KEY"),
            server_name: None,
        }
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    pub fn client_certificate(mut self, cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        self.client_cert_file = Some(cert_file.into());
        self.client_key_file = Some(key_file.into());
        self
    }

    fn credentials(&self) -> ClientResult<Credentials> {
        match &self.token {
            Some(token) => Credentials::bearer(token),
            None => Ok(Credentials::default()),
        }
    }

    fn tls(&self, endpoint: &str) -> ClientResult<Option<ClientTlsConfig>> {
        let https = endpoint.starts_with("https://");
        if !https && self.ca_file.is_none() && self.client_cert_file.is_none() {
            return Ok(None);
        }
        if !https {
            return Err(ClientError::Config(format!(
                "endpoint: {endpoint:?} is plaintext but TLS options are set; use https://"
            )));
        }
        let read = |what: &str, path: &PathBuf| {
            std::fs::read(path)
                .map_err(|error| ClientError::Config(format!("{what}: cannot read {}: {error}", path.display())))
        };
        let mut tls = ClientTlsConfig::new();
        tls = match &self.ca_file {
            Some(path) => tls.ca_certificate(Certificate::from_pem(read("ca_file", path)?)),
            None => tls.with_native_roots(),
        };
        match (&self.client_cert_file, &self.client_key_file) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(
                    read("client_cert_file", cert)?,
                    read("client_key_file", key)?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(ClientError::Config(
                    "client_cert_file and client_key_file go together".to_string(),
                ));
            }
        }
        if let Some(name) = &self.server_name {
            tls = tls.domain_name(name.clone());
        }
        Ok(Some(tls))
    }

    /// Connects to `endpoint` (`http://host:port` or `https://host:port`).
    pub async fn connect(&self, endpoint: &str) -> ClientResult<Transport> {
        let mut builder = Endpoint::from_shared(endpoint.to_string())?.tcp_nodelay(true);
        if let Some(tls) = self.tls(endpoint)? {
            builder = builder.tls_config(tls)?;
        }
        let channel = builder.connect().await?;
        Ok(InterceptedService::new(channel, self.credentials()?))
    }
}
