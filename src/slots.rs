//! Places held under two caps, in total and per key (a clinic's DICOM associations, an
//! address's HL7 connections): one is taken when a connection is admitted and given back when
//! its holder is dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Which cap a refused place met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Total,
    Key,
}

/// The places held, by key; cheap to clone, shared by the connections of one listener (or of
/// all listeners sharing the caps).
#[derive(Debug)]
pub struct Slots<K> {
    held: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K> Clone for Slots<K> {
    fn clone(&self) -> Self {
        Slots {
            held: self.held.clone(),
        }
    }
}

impl<K> Default for Slots<K> {
    fn default() -> Self {
        Slots {
            held: Arc::default(),
        }
    }
}

/// One place held; dropping it gives the place back.
#[derive(Debug)]
pub struct Slot<K: Eq + Hash> {
    slots: Slots<K>,
    key: K,
}

impl<K: Eq + Hash + Clone> Slots<K> {
    /// Takes a place for `key` unless `max_total` places are held in all, or `max_per_key`
    /// for `key`.
    pub fn take(&self, key: K, max_total: usize, max_per_key: usize) -> Result<Slot<K>, Full> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.values().sum::<usize>() >= max_total {
            return Err(Full::Total);
        }
        let mine = held.entry(key.clone()).or_default();
        if *mine >= max_per_key {
            return Err(Full::Key);
        }
        *mine += 1;
        Ok(Slot {
            slots: self.clone(),
            key,
        })
    }
}

impl<K: Eq + Hash> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_in_total_and_per_key_and_places_come_back() {
        let slots = Slots::default();
        let first = slots.take("a", 3, 2).unwrap();
        let _second = slots.take("a", 3, 2).unwrap();
        assert_eq!(slots.take("a", 3, 2).unwrap_err(), Full::Key);
        let _third = slots.take("b", 3, 2).unwrap();
        assert_eq!(slots.take("b", 3, 2).unwrap_err(), Full::Total);
        drop(first);
        assert!(slots.take("b", 3, 2).is_ok());
    }
}
