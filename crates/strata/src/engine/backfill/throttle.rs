//! Pauses between batches: the configured sleep, and replica replay lag.
//! (Application queries blocked behind a batch are the watchdog's: it
//! cancels the batch, which `run` then retries smaller after a pause.)

use std::time::{Duration, Instant};

use crate::config::BackfillSettings;
use crate::db::{activity, Connection};

use super::BackfillEvent;

/// How often replica lag is looked at, and how long a lag pause lasts
/// before the next look.
const LAG_LOOK: Duration = Duration::from_secs(1);

/// The state of the throttles across batches.
pub struct Throttle {
    sleep: Duration,
    max_lag: Option<Duration>,
    last_look: Option<Instant>,
}

impl Throttle {
    /// From the settings.
    pub fn new(settings: &BackfillSettings) -> Throttle {
        Throttle {
            sleep: settings.sleep,
            max_lag: settings.max_replication_lag,
            last_look: None,
        }
    }

    /// Before a batch (not the first): sleeps as configured, then waits
    /// while a replica lags more than allowed, reporting each pause.
    pub async fn before_batch(
        &mut self,
        conn: &Connection,
        first: bool,
        on_event: &mut dyn FnMut(BackfillEvent),
    ) {
        if !first && !self.sleep.is_zero() {
            on_event(BackfillEvent::Paused {
                reason: format!(
                    "sleep = {} between batches",
                    humantime::format_duration(self.sleep)
                ),
                pause: self.sleep,
            });
            tokio::time::sleep(self.sleep).await;
        }
        let Some(max) = self.max_lag else { return };
        loop {
            if self.last_look.is_some_and(|t| t.elapsed() < LAG_LOOK) {
                return;
            }
            self.last_look = Some(Instant::now());
            let lag = match activity::max_replication_lag(conn).await {
                Ok(Some(lag)) => lag,
                // No replica, or not allowed to see them: nothing to wait for.
                _ => return,
            };
            if lag <= max.as_secs_f64() {
                return;
            }
            on_event(BackfillEvent::Paused {
                reason: format!(
                    "a replica lags {lag:.1} s behind (max_replication_lag = {})",
                    humantime::format_duration(max)
                ),
                pause: LAG_LOOK,
            });
            tokio::time::sleep(LAG_LOOK).await;
        }
    }
}
