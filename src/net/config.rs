//! Network limits, all with defaults that leave a local user unaffected.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// Connections served at once; one more is answered with an error
    /// naming this limit and closed.
    pub max_connections: usize,
    /// A connection must complete a request's headers (and its TLS
    /// handshake) within this time of opening or of its last response.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A connection with no request in flight for this long is closed
    /// (clients reconnect on their next call).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// HTTP/2 streams (calls) in flight on one connection.
    pub max_streams_per_connection: u32,
    /// Open watch streams (gRPC watches and SSE) on one connection.
    pub max_watches_per_connection: usize,
    /// Submit requests being processed at once, on all connections; one
    /// more is refused at once with RESOURCE_EXHAUSTED / 429.
    pub max_in_flight_submits: usize,
    /// Host names (as in the URL a client uses; `*.example.com` for a
    /// domain's subdomains, `*` for any) this server answers to when no
    /// tokens are configured, besides IP addresses and `localhost`. Any
    /// other `Host` is refused: a web page whose name was rebound to this
    /// address (DNS rebinding) must not read or change tasks.
    pub allowed_hosts: Vec<String>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_streams_per_connection: 512,
            max_watches_per_connection: 256,
            max_in_flight_submits: 1024,
            allowed_hosts: Vec::new(),
        }
    }
}
