//! Where the store's effects go: the one hook every change of every protocol passes through
//! (`store/effect.rs` describes them) fans out here to keyspace notifications and to one tap
//! that a later consumer installs (the replication log, a snapshot's change feed; tests
//! install a recorder).
//!
//! Called by the store with a shard lock held: everything here must be quick, must never call
//! back into the store, and never blocks on I/O.

use std::sync::{Arc, OnceLock};

use crate::pubsub::KeyspaceNotifier;
use crate::store::{Effect, Observer};

/// The observer the store reports to.
pub struct EffectHub {
    notifier: KeyspaceNotifier,
    tap: OnceLock<Box<dyn Observer>>,
}

/// A tap was already installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an effect tap is already installed")]
pub struct TapTaken;

impl EffectHub {
    pub fn new(notifier: KeyspaceNotifier) -> Arc<EffectHub> {
        Arc::new(EffectHub {
            notifier,
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
        if let Some(tap) = self.tap.get() {
            tap.effect(effect);
        }
    }
}
