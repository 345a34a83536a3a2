//! Where the engine reads the time: one clock, handed to every part of it.
//! In production the system's; in a test one that only moves when told,
//! so that a test about the passage of time moves it instead of waiting.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::model::Timestamp;

/// The engine's clock. Cheap to clone; clones read the same time.
#[derive(Clone, Default)]
pub struct Clock {
    /// Set for a clock that moves only when told, with what it reads.
    manual: Option<Arc<watch::Sender<Timestamp>>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// A clock that reads `start` until it is moved on.
    pub fn manual(start: Timestamp) -> Self {
        Clock {
            manual: Some(Arc::new(watch::Sender::new(start))),
        }
    }

    pub fn now(&self) -> Timestamp {
        match &self.manual {
            Some(time) => *time.borrow(),
            None => Timestamp::now(),
        }
    }

    /// Moves a manual clock `by` on, waking whoever sleeps on it; the
    /// system's clock moves on its own and ignores this.
    pub fn advance(&self, by: Duration) {
        if let Some(time) = &self.manual {
            time.send_modify(|now| *now = now.saturating_add(by));
        }
    }

    /// Sleeps until `at` on this clock, or for `at'`s distance from now of
    /// real time on the system's.
    pub async fn sleep_until(&self, at: Timestamp) {
        match &self.manual {
            Some(time) => {
                let mut moved = time.subscribe();
                // The sender lives as long as this clock does.
                let _ = moved.wait_for(|now| *now >= at).await;
            }
            None => tokio::time::sleep(at.duration_since(Timestamp::now())).await,
        }
    }

    /// Sleeps for `duration` on this clock, counted from this call (not
    /// from the first poll).
    pub fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        let at = self.now().saturating_add(duration);
        let clock = self.clone();
        async move { clock.sleep_until(at).await }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            Some(_) => write!(f, "Clock::manual({:?})", self.now()),
            None => f.write_str("Clock::system"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_told_and_wakes_its_sleepers() {
        let clock = Clock::manual(Timestamp(1_000_000));
        assert_eq!(clock.now(), Timestamp(1_000_000));
        let sleeper = tokio::spawn(clock.sleep(Duration::from_secs(5)));
        clock.advance(Duration::from_secs(4));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "four seconds of five have passed");
        clock.advance(Duration::from_secs(1));
        sleeper.await.expect("woken when its time came");
        assert_eq!(clock.now(), Timestamp(6_000_000));
    }
}
