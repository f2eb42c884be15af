//! Where the store's effects go: the one hook every change of every protocol passes through
//! (`store/effect.rs` describes them) fans out here to keyspace notifications, to the blocked
//! stream group readers of a stream that goes away (they are unblocked with an error, as
//! Redis 7.0 does), and to one tap that a later consumer installs (the replication log, a snapshot's change feed; tests
//! install a recorder).
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
    blocked: Arc<Registry>,
    tap: OnceLock<Box<dyn Observer>>,
}

/// A tap was already installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an effect tap is already installed")]
pub struct TapTaken;

impl EffectHub {
    pub fn new(notifier: KeyspaceNotifier, blocked: Arc<Registry>) -> Arc<EffectHub> {
        Arc::new(EffectHub {
            notifier,
            blocked,
            tap: OnceLock::new(),
        })
    }

    /// Installs the one tap that sees every effect after the notifier does.
    pub fn tap(&self, observer: Box<dyn Observer>) -> Result<(), TapTaken> {
        self.tap.set(observer).map_err(|_| TapTaken)
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
        if let Some(tap) = self.tap.get() {
            tap.effect(effect);
        }
    }
}
