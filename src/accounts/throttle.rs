//! Slowing down password guessing: after a run of failed sign-ins for one account name, or from
//! one address, further attempts are refused for a while without checking the password, the
//! pause doubling with each further failure up to a ceiling.
//!
//! The record lives in this process's memory: a restart forgets it, and several nodes count
//! separately (each still bounds the guessing rate). Names and addresses are counted apart, so
//! a clinic's shared outgoing address is locked only after many more failures than one name.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries are forgotten this long after their last failure.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// The pause never grows past this.
const CEILING: Duration = Duration::from_secs(15 * 60);
/// Failures from one address, as a multiple of those allowed for one name.
const ADDRESS_FACTOR: u32 = 4;
/// More entries than this and old ones are swept on the next failure.
const SWEEP_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

pub struct Throttle {
    allowed: u32,
    pause: Duration,
    entries: Mutex<HashMap<String, Failures>>,
}

impl Throttle {
    /// `allowed` failures per name before the first pause of `pause`.
    pub fn new(allowed: u32, pause: Duration) -> Throttle {
        Throttle {
            allowed: allowed.max(1),
            pause,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn keys(name: &str, address: &str) -> [(String, u32); 2] {
        [
            (format!("name:{}", name.to_lowercase()), 1),
            (format!("address:{address}"), ADDRESS_FACTOR),
        ]
    }

    /// How long the caller must still wait before a sign-in for `name` from `address` is
    /// considered; `None` when it may go ahead.
    pub fn wait(&self, name: &str, address: &str) -> Option<Duration> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Self::keys(name, address)
            .iter()
            .filter_map(|(key, _)| entries.get(key)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    pub fn failed(&self, name: &str, address: &str) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > SWEEP_AT {
            entries.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        }
        for (key, factor) in Self::keys(name, address) {
            let entry = entries.entry(key).or_insert(Failures {
                count: 0,
                last: now,
                locked_until: None,
            });
            if now.duration_since(entry.last) >= FORGET_AFTER {
                entry.count = 0;
            }
            entry.count += 1;
            entry.last = now;
            let allowed = self.allowed.saturating_mul(factor);
            if entry.count >= allowed {
                let doublings = (entry.count - allowed).min(16);
                let pause = self.pause.saturating_mul(1u32 << doublings).min(CEILING);
                entry.locked_until = Some(now + pause);
            }
        }
    }

    /// A successful sign-in clears the name's record (not the address's: one account's
    /// success says nothing about guesses at others).
    pub fn succeeded(&self, name: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&format!("name:{}", name.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_a_name_after_its_allowance_and_doubles() {
        let t = Throttle::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            t.failed("Jonas", "10.0.0.1");
            assert_eq!(t.wait("jonas", "10.0.0.1"), None);
        }
        t.failed("jonas", "10.0.0.1");
        let first = t.wait("jonas", "10.0.0.9").expect("locked by name");
        assert!(first <= Duration::from_secs(10) && first > Duration::from_secs(9));
        t.failed("jonas", "10.0.0.1");
        assert!(t.wait("jonas", "10.0.0.9").unwrap() > Duration::from_secs(19));
        // Another name from the same address is not locked yet (the address allows more).
        assert_eq!(t.wait("petras", "10.0.0.1"), None);
        t.succeeded("JONAS");
        assert_eq!(t.wait("jonas", "10.0.0.9"), None);
    }

    #[test]
    fn locks_an_address_guessing_many_names() {
        let t = Throttle::new(2, Duration::from_secs(5));
        for i in 0..8 {
            t.failed(&format!("user{i}"), "10.0.0.2");
        }
        assert!(t.wait("someone-else", "10.0.0.2").is_some());
        assert_eq!(t.wait("someone-else", "10.0.0.3"), None);
    }
}
