//! Who may open an MLLP connection, decided before any frame is read: the peer's address must
//! lie in a declared sender's networks, and the connections open stay under a cap in total and
//! per address, so one HIS (or a stranger) cannot hold every slot or make us parse its bytes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::config::Hl7Config;

/// Why a connection was closed unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No declared sender may send from this address.
    Address,
    /// The listener holds `hl7.max_connections` already.
    Full,
    /// This address holds `hl7.max_connections_per_address` already.
    AddressFull,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Address => "address",
            Refusal::Full => "full",
            Refusal::AddressFull => "address_full",
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Address => "the address is in no declared HL7 sender's networks",
            Refusal::Full => "the listener's connection limit is reached",
            Refusal::AddressFull => "the address's connection limit is reached",
        }
    }
}

/// The connections open, by peer address.
#[derive(Debug, Default, Clone)]
pub struct Slots {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One admitted connection; dropping it gives its slot back.
#[derive(Debug)]
pub struct Slot {
    slots: Slots,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.address);
            }
        }
    }
}

impl Slots {
    /// Admits a connection from `address`, or says why not.
    pub fn admit(&self, config: &Hl7Config, address: IpAddr) -> Result<Slot, Refusal> {
        if !config.senders.iter().any(|s| s.allows_address(address)) {
            return Err(Refusal::Address);
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.values().sum::<usize>() >= config.max_connections {
            return Err(Refusal::Full);
        }
        let mine = open.entry(address).or_default();
        if *mine >= config.max_connections_per_address {
            return Err(Refusal::AddressFull);
        }
        *mine += 1;
        Ok(Slot {
            slots: self.clone(),
            address,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Hl7Sender;

    fn config(networks: &[&str]) -> Hl7Config {
        Hl7Config {
            enabled: true,
            listen: "127.0.0.1:0".parse().unwrap(),
            max_message_bytes: 1024,
            idle_timeout_secs: 1,
            max_connections: 3,
            max_connections_per_address: 2,
            senders: vec![Hl7Sender {
                facility: "HIS".into(),
                clinic: "c".into(),
                networks: networks.iter().map(|n| n.parse().unwrap()).collect(),
            }],
        }
    }

    #[test]
    fn addresses_outside_every_sender_are_refused() {
        let slots = Slots::default();
        let config = config(&["10.0.0.0/8"]);
        let outside: IpAddr = "192.168.1.1".parse().unwrap();
        assert_eq!(slots.admit(&config, outside).unwrap_err(), Refusal::Address);
        assert!(slots.admit(&config, "10.1.2.3".parse().unwrap()).is_ok());
    }

    #[test]
    fn caps_hold_in_total_and_per_address_and_slots_come_back() {
        let slots = Slots::default();
        let config = config(&[]);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = slots.admit(&config, a).unwrap();
        let _second = slots.admit(&config, a).unwrap();
        assert_eq!(slots.admit(&config, a).unwrap_err(), Refusal::AddressFull);
        let _third = slots.admit(&config, b).unwrap();
        assert_eq!(slots.admit(&config, b).unwrap_err(), Refusal::Full);
        drop(first);
        assert!(slots.admit(&config, b).is_ok());
    }
}
