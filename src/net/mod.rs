//! The listener: accepting connections (plain TCP or TLS), holding each one
//! to its limits and timeouts, and serving one HTTP router on it (gRPC over
//! HTTP/2, the REST bridge over HTTP/1.1 or HTTP/2).
//!
//! tonic's own server owns its accept loop and offers none of the bounds a
//! server exposed to a network needs (connection count, a deadline for a
//! connection that never sends a request, backing off at the file
//! descriptor limit), so taskd serves the tonic routes on hyper itself.

mod accept;
mod config;
mod connection;
pub mod tls;

pub use accept::{Listener, serve};
pub use config::NetConfig;
pub use connection::{ConnectionInfo, WatchSlot};
