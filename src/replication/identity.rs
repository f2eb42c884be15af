//! What this server tells others about itself as a replica, under Redis's names:
//! `replica-priority` (shown to Sentinel in `INFO replication` as `slave_priority`; 0 = never
//! promote me), `replica-announced` (`replica_announced`; 0 hides the replica from Sentinel's
//! `SENTINEL REPLICAS`), and `replica-announce-ip`/`replica-announce-port` (sent to the primary
//! with `REPLCONF ip-address`/`listening-port`, so its `INFO` and `ROLE` list the replica at
//! an address others can reach behind NAT or a container port mapping).
//!
//! It holds the live values (`CONFIG SET` changes them while links and INFO read them) and
//! never does I/O: the replica link reads the announce address at its next handshake, as
//! Redis does.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};

use parking_lot::Mutex;

use crate::config::ReplicationSection;
pub use crate::config::MAX_ANNOUNCE_IP_LEN;

/// The live replica identity settings.
#[derive(Debug)]
pub struct ReplicaIdentity {
    priority: AtomicU32,
    announced: AtomicBool,
    /// "" = let the primary use the link's peer address.
    announce_ip: Mutex<String>,
    /// 0 = announce the RESP port this server listens on.
    announce_port: AtomicU16,
}

impl ReplicaIdentity {
    pub fn new(section: &ReplicationSection) -> ReplicaIdentity {
        ReplicaIdentity {
            priority: AtomicU32::new(section.replica_priority),
            announced: AtomicBool::new(section.replica_announced),
            announce_ip: Mutex::new(section.replica_announce_ip.clone()),
            announce_port: AtomicU16::new(section.replica_announce_port),
        }
    }

    /// `replica-priority`: lower is preferred by Sentinel; 0 = never promoted.
    pub fn priority(&self) -> u32 {
        self.priority.load(Ordering::Relaxed)
    }

    pub fn set_priority(&self, priority: u32) {
        self.priority.store(priority, Ordering::Relaxed);
    }

    /// `replica-announced`.
    pub fn announced(&self) -> bool {
        self.announced.load(Ordering::Relaxed)
    }

    pub fn set_announced(&self, announced: bool) {
        self.announced.store(announced, Ordering::Relaxed);
    }

    /// `replica-announce-ip` ("" = none).
    pub fn announce_ip(&self) -> String {
        self.announce_ip.lock().clone()
    }

    pub fn set_announce_ip(&self, ip: String) {
        *self.announce_ip.lock() = ip;
    }

    /// `replica-announce-port` (0 = none).
    pub fn announce_port(&self) -> u16 {
        self.announce_port.load(Ordering::Relaxed)
    }

    pub fn set_announce_port(&self, port: u16) {
        self.announce_port.store(port, Ordering::Relaxed);
    }

    /// The port to send in `REPLCONF listening-port`: the announced one, else `resp_port`.
    pub fn listening_port(&self, resp_port: u16) -> u16 {
        match self.announce_port() {
            0 => resp_port,
            port => port,
        }
    }

    /// Writes the live values back into a config section (CONFIG REWRITE).
    pub fn store_into(&self, section: &mut ReplicationSection) {
        section.replica_priority = self.priority();
        section.replica_announced = self.announced();
        section.replica_announce_ip = self.announce_ip();
        section.replica_announce_port = self.announce_port();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_announced_port_wins_over_the_listening_one_unless_zero() {
        let identity = ReplicaIdentity::new(&ReplicationSection::default());
        assert_eq!(identity.priority(), 100);
        assert!(identity.announced());
        assert_eq!(identity.listening_port(6379), 6379);
        identity.set_announce_port(7000);
        assert_eq!(identity.listening_port(6379), 7000);
        let mut section = ReplicationSection::default();
        identity.set_priority(0);
        identity.set_announce_ip("10.0.0.9".into());
        identity.store_into(&mut section);
        assert_eq!(
            (
                section.replica_priority,
                section.replica_announce_ip.as_str(),
                section.replica_announce_port
            ),
            (0, "10.0.0.9", 7000)
        );
    }
}
