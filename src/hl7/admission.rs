//! Who may open an MLLP connection, decided before any frame is read: the peer's address must
//! lie in a declared sender's networks, and the connections open stay under a cap in total and
//! per address, so one HIS (or a stranger) cannot hold every slot or make us parse its bytes.

use std::net::IpAddr;

use crate::config::Hl7Config;
use crate::slots::{Full, Slot, Slots};

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

/// Admits a connection from `address` into `open` (the connections open, by address), or
/// says why not.
pub fn admit(
    open: &Slots<IpAddr>,
    config: &Hl7Config,
    address: IpAddr,
) -> Result<Slot<IpAddr>, Refusal> {
    if !config.senders.iter().any(|s| s.allows_address(address)) {
        return Err(Refusal::Address);
    }
    open.take(
        address,
        config.max_connections,
        config.max_connections_per_address,
    )
    .map_err(|full| match full {
        Full::Total => Refusal::Full,
        Full::Key => Refusal::AddressFull,
    })
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
        assert_eq!(
            admit(&slots, &config, outside).unwrap_err(),
            Refusal::Address
        );
        assert!(admit(&slots, &config, "10.1.2.3".parse().unwrap()).is_ok());
    }

    #[test]
    fn caps_hold_in_total_and_per_address_and_slots_come_back() {
        let slots = Slots::default();
        let config = config(&[]);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = admit(&slots, &config, a).unwrap();
        let _second = admit(&slots, &config, a).unwrap();
        assert_eq!(admit(&slots, &config, a).unwrap_err(), Refusal::AddressFull);
        let _third = admit(&slots, &config, b).unwrap();
        assert_eq!(admit(&slots, &config, b).unwrap_err(), Refusal::Full);
        drop(first);
        assert!(admit(&slots, &config, b).is_ok());
    }
}
