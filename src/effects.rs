//! Where the store's effects go: the one hook every change of every protocol passes through
//! (`store/effect.rs` describes them) fans out here to keyspace notifications, to the blocked
//! stream group readers of a stream that goes away (they are unblocked with an error, as
//! Redis 7.0 does), and to the taps consumers install (the replication log at start; a
//! snapshot's change feed; tests install a recorder), at most [`TAPS`].
//!
//! Called by the store with a shard lock held: everything here must be quick, must never call
//! back into the store, and never blocks on I/O.

use std::sync::{Arc, OnceLock};

use crate::blocking::Registry;
use crate::pubsub::KeyspaceNotifier;
use crate::store::{Effect, KeyKind, Observer};

/// The observer the store reports to.
pub struct EffectHub {
    notifier: KeyspaceNotifier,
    /// Fixed slots filled once each: reading one is a plain load, no lock per effect.
    taps: [OnceLock<Box<dyn Observer>>; TAPS],
    blocked: Arc<Registry>,
}

/// How many taps a hub holds.
pub const TAPS: usize = 2;

/// Every tap slot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every effect tap is already installed")]
pub struct TapTaken;

impl EffectHub {
    pub fn new(notifier: KeyspaceNotifier, blocked: Arc<Registry>) -> Arc<EffectHub> {
        Arc::new(EffectHub {
            notifier,
            blocked,
            taps: [OnceLock::new(), OnceLock::new()],
        })
    }

    /// Installs a tap that sees every effect after the notifier (and earlier taps) do.
    pub fn tap(&self, observer: Box<dyn Observer>) -> Result<(), TapTaken> {
        let mut observer = Some(observer);
        for slot in &self.taps {
            if let Some(next) = observer.take() {
                if let Err(back) = slot.set(next) {
                    observer = Some(back);
                }
            }
        }
        match observer {
            None => Ok(()),
            Some(_) => Err(TapTaken),
        }
    }
}

impl Observer for EffectHub {
    fn effect(&self, effect: &Effect<'_>) {
        self.notifier.effect(effect);
        if self.blocked.parked() > 0 {
            match effect {
                Effect::Removed {
                    key,
                    kind: KeyKind::Stream,
                    ..
                } => self.blocked.stream_gone(key),
                Effect::Put { item, .. } if item.kind() != KeyKind::Stream => {
                    self.blocked.stream_gone(item.key())
                }
                Effect::Flushed => self.blocked.every_stream_gone(),
                _ => {}
            }
        }
        for tap in self.taps.iter().map_while(OnceLock::get) {
            tap.effect(effect);
        }
    }
}
