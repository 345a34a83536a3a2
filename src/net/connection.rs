//! One connection: its requests in flight, its open watches, and when it
//! has been quiet long enough to be closed.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use parking_lot::Mutex;

/// What a request's handler can learn about its connection (an extension on
/// every request).
#[derive(Clone)]
pub struct ConnectionInfo(Arc<ConnectionState>);

struct ConnectionState {
    in_flight: AtomicUsize,
    watches: AtomicUsize,
    max_watches: usize,
    /// When the connection last had nothing in flight, and whether it has
    /// served a request at all (quiet before the first request is a
    /// connection that never sends one).
    quiet_since: Mutex<(Instant, bool)>,
}

/// An open watch on a connection; dropping it frees the place.
pub struct WatchSlot(Arc<ConnectionState>);

impl Drop for WatchSlot {
    fn drop(&mut self) {
        self.0.watches.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionInfo {
    pub fn new(max_watches: usize) -> Self {
        ConnectionInfo(Arc::new(ConnectionState {
            in_flight: AtomicUsize::new(0),
            watches: AtomicUsize::new(0),
            max_watches,
            quiet_since: Mutex::new((Instant::now(), false)),
        }))
    }

    /// Takes a place for one more watch stream, or says why there is none:
    /// the message names the limit.
    pub fn open_watch(&self) -> Result<WatchSlot, String> {
        let state = &self.0;
        let mut current = state.watches.load(Ordering::Acquire);
        loop {
            if current >= state.max_watches {
                return Err(format!(
                    "net.max_watches_per_connection: this connection has {current} watch streams open, the limit; \
                     close one or open another connection"
                ));
            }
            match state
                .watches
                .compare_exchange(current, current + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(WatchSlot(state.clone())),
                Err(actual) => current = actual,
            }
        }
    }

    /// Marks a request as started; the guard marks it ended when the
    /// response body is done (or dropped).
    pub(crate) fn request_started(&self) -> InFlight {
        let state = &self.0;
        if state.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
            state.quiet_since.lock().1 = true;
        }
        InFlight(state.clone())
    }

    /// How long the connection has had nothing in flight, and whether it
    /// ever served a request; `None` while a request is in flight.
    pub(crate) fn quiet_for(&self) -> Option<(Duration, bool)> {
        let state = &self.0;
        if state.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let (since, served) = *state.quiet_since.lock();
        Some((since.elapsed(), served))
    }
}

pub(crate) struct InFlight(Arc<ConnectionState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut quiet = self.0.quiet_since.lock();
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            quiet.0 = Instant::now();
        }
    }
}

/// A response body that holds its request's [`InFlight`] until it ends:
/// a streaming response (a watch) keeps its connection busy.
pub(crate) struct TrackedBody {
    inner: Body,
    in_flight: Option<InFlight>,
}

impl TrackedBody {
    pub(crate) fn new(inner: Body, in_flight: InFlight) -> Self {
        TrackedBody {
            inner,
            in_flight: Some(in_flight),
        }
    }
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.in_flight = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_beyond_the_limit_are_refused_and_a_closed_one_frees_its_place() {
        let connection = ConnectionInfo::new(2);
        let first = connection.open_watch().expect("first");
        let _second = connection.open_watch().expect("second");
        let refused = connection.open_watch().err().expect("third refused");
        assert!(refused.contains("net.max_watches_per_connection"), "{refused}");
        drop(first);
        assert!(connection.open_watch().is_ok());
    }

    #[test]
    fn a_connection_is_quiet_only_with_nothing_in_flight() {
        let connection = ConnectionInfo::new(1);
        assert!(matches!(connection.quiet_for(), Some((_, false))));
        let request = connection.request_started();
        assert!(connection.quiet_for().is_none());
        drop(request);
        assert!(matches!(connection.quiet_for(), Some((_, true))));
    }
}
