//! Per-key locks so that concurrent writers to one key commit one after the other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// A table of async mutexes keyed by `bucket/key`; entries vanish when nobody holds them.
#[derive(Default)]
pub struct KeyLocks {
    table: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// Holds a key's lock; dropping it releases the key.
pub struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    name: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyLocks {
    pub async fn lock(&self, bucket: &str, key: &str) -> KeyGuard<'_> {
        let name = format!("{bucket}/{key}");
        let mutex = self
            .table
            .lock()
            .expect("lock")
            .entry(name.clone())
            .or_default()
            .clone();
        let guard = mutex.lock_owned().await;
        KeyGuard {
            locks: self,
            name,
            guard: Some(guard),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut table = self.locks.table.lock().expect("lock");
        if let Some(m) = table.get(&self.name) {
            // Only the table holds it: nobody waits, so the entry can go.
            if Arc::strong_count(m) == 1 {
                table.remove(&self.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serialises_one_key_and_cleans_up() {
        let locks = KeyLocks::default();
        let g = locks.lock("b", "k").await;
        assert!(locks.table.lock().unwrap().contains_key("b/k"));
        let other = locks.lock("b", "other").await;
        drop(other);
        drop(g);
        assert!(locks.table.lock().unwrap().is_empty());
    }
}
