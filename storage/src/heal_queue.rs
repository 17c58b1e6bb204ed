//! Keys waiting to be healed (a drive missed a write, a read found a bad shard): each key is
//! queued once, a failed heal is retried after a growing delay, and the counts are kept for
//! the operator's metrics.

use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// A bucket and key.
pub type HealKey = (String, String);

const FIRST_RETRY: Duration = Duration::from_millis(500);
const LONGEST_RETRY: Duration = Duration::from_secs(300);
/// About four hours of retries at the longest delay; then the key waits for the next full
/// heal (`strata admin heal`, a replaced drive), and the give-up is counted.
const MAX_ATTEMPTS: u32 = 50;

/// Counters of the heal queue since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HealQueueStats {
    /// Keys queued or waiting for a retry.
    pub pending: usize,
    pub healed: u64,
    pub failed_attempts: u64,
    pub given_up: u64,
}

pub struct HealQueue {
    tx: mpsc::UnboundedSender<HealKey>,
    /// Keys queued or waiting for a retry, with their failed attempts so far. A key leaves
    /// this map when its heal starts, so a write that misses a drive during the heal queues
    /// the key again.
    pending: Mutex<HashMap<HealKey, u32>>,
    healed: AtomicU64,
    failed_attempts: AtomicU64,
    given_up: AtomicU64,
}

impl HealQueue {
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<HealKey>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = Self {
            tx,
            pending: Default::default(),
            healed: Default::default(),
            failed_attempts: Default::default(),
            given_up: Default::default(),
        };
        (Arc::new(queue), rx)
    }

    /// Queues a key unless it is queued or waiting for a retry already.
    pub fn push(&self, bucket: &str, key: &str) {
        let k = (bucket.to_owned(), key.to_owned());
        let mut pending = self.pending.lock().expect("lock");
        if !pending.contains_key(&k) {
            pending.insert(k.clone(), 0);
            let _ = self.tx.send(k);
        }
    }

    /// A key's heal starts: returns its failed attempts so far.
    pub fn start(&self, k: &HealKey) -> u32 {
        self.pending.lock().expect("lock").remove(k).unwrap_or(0)
    }

    pub fn healed(&self) {
        self.healed.fetch_add(1, Ordering::Relaxed);
    }

    /// A key's heal failed after `attempts` earlier failures: schedules the retry and returns
    /// its delay, or `None` when the key is given up.
    pub fn failed(&self, k: HealKey, attempts: u32) -> Option<Duration> {
        // Counted under the lock, after the key is back in `pending`: whoever sees the count
        // sees the key waiting.
        let mut pending = self.pending.lock().expect("lock");
        self.failed_attempts.fetch_add(1, Ordering::Relaxed);
        let attempts = attempts + 1;
        if attempts >= MAX_ATTEMPTS {
            self.given_up.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if pending.contains_key(&k) {
            return Some(Duration::ZERO); // queued again meanwhile
        }
        let delay = retry_delay(attempts);
        pending.insert(k.clone(), attempts);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(k);
        });
        Some(delay)
    }

    pub fn stats(&self) -> HealQueueStats {
        HealQueueStats {
            pending: self.pending.lock().expect("lock").len(),
            healed: self.healed.load(Ordering::Relaxed),
            failed_attempts: self.failed_attempts.load(Ordering::Relaxed),
            given_up: self.given_up.load(Ordering::Relaxed),
        }
    }
}

/// Doubles from half a second up to five minutes.
fn retry_delay(attempts: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(LONGEST_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_five_minutes() {
        let delays: Vec<u64> = (1..=5).map(|a| retry_delay(a).as_millis() as u64).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000]);
        assert_eq!(retry_delay(10), Duration::from_secs(256));
        assert_eq!(retry_delay(11), LONGEST_RETRY);
        assert_eq!(retry_delay(MAX_ATTEMPTS), LONGEST_RETRY);
    }

    #[tokio::test]
    async fn keys_are_queued_once_and_retried_until_given_up() {
        let (queue, mut rx) = HealQueue::new();
        queue.push("b", "k");
        queue.push("b", "k");
        let k = rx.recv().await.unwrap();
        assert!(rx.try_recv().is_err(), "queued twice");
        assert_eq!(queue.stats().pending, 1);

        // A write during the heal queues the key again.
        assert_eq!(queue.start(&k), 0);
        queue.push("b", "k");
        assert_eq!(rx.recv().await.unwrap(), k);
        queue.start(&k);

        assert_eq!(queue.failed(k.clone(), 0), Some(FIRST_RETRY));
        assert_eq!(queue.stats().pending, 1);
        queue.push("b", "k"); // waiting for its retry: not queued twice
        assert_eq!(rx.recv().await.unwrap(), k);
        assert!(rx.try_recv().is_err());
        assert_eq!(queue.start(&k), 1);
        queue.healed();

        assert_eq!(queue.failed(k.clone(), MAX_ATTEMPTS - 1), None);
        let stats = queue.stats();
        assert_eq!(
            (
                stats.pending,
                stats.healed,
                stats.failed_attempts,
                stats.given_up
            ),
            (0, 1, 2, 1)
        );
    }
}
