//! The fixed mutations of memcached's storage commands (set/add/replace/append/prepend/cas,
//! delete and meta invalidation, touch, unlink, flush_all) and how an [`Entry`] carries each out.
//!
//! A [`Mutation`] is plain data, so it can be logged or sent; [`Store::apply`](super::Store::apply)
//! runs it on the key's locked [`Entry`], the same path every RESP write takes, so its effect
//! is reported by the same hook. Arithmetic (incr/decr) is not here: its number rules are
//! memcached's, and live with the command (`command/kv.rs`) as RESP's `INCR` does.
//!
//! Nothing here locks: the entry holds the key's shard.

use super::entry::Entry;
use super::layout::info;
use super::{Expiry, ItemSpec, Outcome, PutCause, StoreError};

/// How a write treats an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Store whether or not the key exists.
    Set,
    /// Store only if the key does not exist.
    Add,
    /// Store only if the key exists.
    Replace,
    /// Add the value after the existing one, keeping its flags and expiry.
    Append,
    /// Add the value before the existing one, keeping its flags and expiry.
    Prepend,
}

/// A value write.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub flags: u32,
    pub expiry: Expiry,
    pub mode: WriteMode,
    /// Store only if the item exists with this cas unique.
    pub compare_cas: Option<u64>,
    /// Give the stored item this cas unique instead of a fresh one.
    pub new_cas: Option<u64>,
    /// With `compare_cas`: what a cas older than the item's does.
    pub stale_cas: StaleCas,
}

/// What a write whose compared cas is older than the item's does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleCas {
    /// Fail with `Exists`, as any cas mismatch.
    Refuse,
    /// Store anyway but mark the item stale (meta `ms I`).
    Invalidate,
}

/// A delete, or its gentler forms.
#[derive(Debug, Clone, Copy)]
pub struct Delete<'a> {
    pub key: &'a [u8],
    pub compare_cas: Option<u64>,
    pub new_cas: Option<u64>,
    /// Keep the item but mark it stale with a new cas (meta `md I`), optionally re-timing it.
    pub invalidate: Option<Option<Expiry>>,
}

/// Every change to the store.
#[derive(Debug, Clone, Copy)]
pub enum Mutation<'a> {
    Write(Write<'a>),
    Delete(Delete<'a>),
    /// Change an item's expiry.
    Touch {
        key: &'a [u8],
        expiry: Expiry,
    },
    /// Drop the key whatever it holds (e.g. after a set was rejected as too large).
    Unlink {
        key: &'a [u8],
    },
    /// Invalidate every item now (`at_ms` = None) or every item written before `at_ms`.
    FlushAll {
        at_ms: Option<u64>,
    },
}

impl Entry<'_> {
    /// A storage command on this key (memcached `do_store_item`).
    pub(super) fn write(&mut self, write: Write<'_>) -> Outcome {
        let store = self.store;
        let existing = self.found;
        let mut stale = false;
        match (write.mode, existing) {
            (WriteMode::Add, Some(found)) => {
                // memcached bumps the item a failed add collides with.
                // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
                let access = unsafe { store.item_at(self.shard, found.entry) }.access_s();
                store.count_access(self.shard, found, access, self.now_ms);
                return Outcome::NotStored;
            }
            (WriteMode::Replace | WriteMode::Append | WriteMode::Prepend, None) => {
                return Outcome::NotStored;
            }
            _ => {}
        }
        if let Some(expected) = write.compare_cas {
            let Some(current) = self.cas() else {
                return Outcome::NotFound;
            };
            if expected != current {
                if write.stale_cas == StaleCas::Invalidate && expected < current {
                    stale = true;
                } else {
                    return Outcome::Exists;
                }
            }
        }
        let joined;
        let mut spec = match (write.mode, existing) {
            (WriteMode::Append | WriteMode::Prepend, Some(found)) => {
                let old = match self.string() {
                    Ok(old) => old.unwrap_or_default(),
                    Err(_) => return Outcome::WrongType,
                };
                if old.len() + write.value.len() > store.item_size_max {
                    return Outcome::TooLarge;
                }
                joined = if write.mode == WriteMode::Append {
                    [old, write.value].concat()
                } else {
                    [write.value, old].concat()
                };
                // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
                let item = unsafe { store.item_at(self.shard, found.entry) };
                let mut spec = ItemSpec::string(write.key, &joined, item.flags(), item.expiry_ms());
                spec.state = item.info() & info::FETCHED;
                spec
            }
            _ => ItemSpec::string(write.key, write.value, write.flags, write.expiry.as_ms()),
        };
        if let (true, Some(found)) = (stale, existing) {
            // memcached 1.6 `do_store_item`: a stale-cas set under invalidation replaces the
            // value but keeps the old item's TTL and its "token sent" mark, and stays stale.
            // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
            let old = unsafe { store.item_at(self.shard, found.entry) };
            spec.expiry_ms = old.expiry_ms();
            spec.state |= info::STALE | (old.info() & info::WIN_SENT);
        }
        spec.cas = write.new_cas;
        match self.put(spec) {
            Ok(cas) => Outcome::Stored { cas },
            Err(error) => error.into(),
        }
    }

    /// A delete, or meta's invalidation (`md I`): the item stays, stale, with a new cas.
    pub(super) fn delete(&mut self, delete: Delete<'_>) -> Outcome {
        let Some(current) = self.cas() else {
            return Outcome::NotFound;
        };
        if delete
            .compare_cas
            .is_some_and(|expected| expected != current)
        {
            return Outcome::Exists;
        }
        let Some(expiry) = delete.invalidate else {
            self.remove();
            return Outcome::Deleted;
        };
        if let Some(expiry) = expiry {
            if let Err(error) = self.restamp(Some(expiry.as_ms()), None) {
                return error.into();
            }
        }
        if let Err(error) = self.restamp(None, Some(delete.new_cas)) {
            return error.into();
        }
        if let Some(found) = self.found {
            let record = self.store.item_mut(self.shard, found.entry);
            record.set_state(info::STALE, true);
            record.set_state(info::WIN_SENT, false);
        }
        Outcome::Deleted
    }

    /// memcached `touch`: a new expiry, the same cas.
    pub(super) fn touch(&mut self, expiry: Expiry) -> Outcome {
        if !self.exists() {
            return Outcome::NotFound;
        }
        match self.restamp(Some(expiry.as_ms()), None) {
            Ok(()) => Outcome::Touched,
            Err(error) => error.into(),
        }
    }

    /// Gives the record a new expiry and/or cas (`Some(None)`: the shard's next cas), in
    /// place where the record has room, and marks the entry restamped.
    pub(super) fn restamp(
        &mut self,
        expiry_ms: Option<u64>,
        cas: Option<Option<u64>>,
    ) -> Result<(), StoreError> {
        let Some(mut found) = self.found else {
            return Ok(());
        };
        let store = self.store;
        if let Some(expiry_ms) = expiry_ms {
            found = store.set_expiry(
                self.shard,
                self.shard_index,
                self.hash,
                found,
                expiry_ms,
                self.now_ms,
            )?;
            self.found = Some(found);
        }
        if let Some(cas) = cas {
            let (moved, _) = store.set_cas(
                self.shard,
                self.shard_index,
                self.hash,
                found,
                cas,
                self.now_ms,
            )?;
            self.found = Some(moved);
        }
        self.mark_put(PutCause::Restamped);
        Ok(())
    }
}
