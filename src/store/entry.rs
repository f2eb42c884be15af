//! Atomic read-modify-write of one key, for commands whose logic does not fit a fixed
//! [`Mutation`](super::Mutation) (most Redis commands: GETEX, SETRANGE, HINCRBYFLOAT, ...).
//!
//! [`Store::edit`] locks the key's shard, hands the closure an [`Entry`], and when the closure
//! returns settles the books: a typed value handed out mutably is re-charged and gets a new
//! cas unique (so WATCH sees the change), an emptied hash is removed as Redis removes empty
//! collections (hashes and sorted sets), and the store is evicted back under its limit after the lock is released.
//! Like `apply`, this is a write path of the store: every change it makes goes through the
//! same insert/replace/remove functions.

use super::hash::HashObject;
use super::item::{Item, ItemView, Object};
use super::shard::SlotId;
use super::zset::ZSet;
use super::{Expiry, KeyEvent, Locked, Outcome, Removal, Store};

/// The key holds a value of another type (Redis `WRONGTYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
pub struct WrongType;

/// An item removed by [`Entry::take`], on its way to another key.
pub struct Moved(Item);

/// One key, locked, for the duration of an [`Store::edit`] closure.
pub struct Entry<'s> {
    store: &'s Store,
    locked: &'s mut Locked,
    shard_index: usize,
    hash: u64,
    key: &'s [u8],
    slot: Option<SlotId>,
    now_ms: u64,
    /// Charge of the item before its object was handed out mutably.
    dirty_charge: Option<usize>,
}

impl Store {
    /// Runs `f` on the entry of `key` with its shard locked. `f` must be quick.
    pub fn edit<R>(&self, key: &[u8], now_ms: u64, f: impl FnOnce(&mut Entry<'_>) -> R) -> R {
        let hash = self.hash(key);
        let shard_index = Self::shard_of(hash);
        let result = {
            let mut guard = self.shards[shard_index].lock();
            let locked = &mut *guard;
            let slot = self.find_live(locked, hash, key, now_ms);
            let mut entry = Entry {
                store: self,
                locked,
                shard_index,
                hash,
                key,
                slot,
                now_ms,
                dirty_charge: None,
            };
            let result = f(&mut entry);
            entry.settle();
            result
        };
        if self.over_limit() {
            self.evict_to_limit(shard_index);
        }
        result
    }
}

impl Entry<'_> {
    pub fn key(&self) -> &[u8] {
        self.key
    }

    pub fn exists(&self) -> bool {
        self.slot.is_some()
    }

    fn item(&self) -> Option<&Item> {
        self.slot.map(|id| self.locked.shard.item(id))
    }

    /// A read-only view of the item (no LRU bump, no win tokens).
    pub fn view(&self) -> Option<ItemView<'_>> {
        let item = self.item()?;
        Some(ItemView {
            item,
            now_ms: self.now_ms,
            fetched_before: item.fetched,
            last_access_before_ms: item.last_access_ms,
            won: false,
            win_already_sent: false,
        })
    }

    /// The string value, `Ok(None)` if the key is absent, `Err` if it holds another type.
    pub fn string(&self) -> Result<Option<&[u8]>, WrongType> {
        match self.item() {
            None => Ok(None),
            Some(item) if item.object.is_some() => Err(WrongType),
            Some(item) => Ok(Some(item.value())),
        }
    }

    /// The hash, `Ok(None)` if absent, `Err` if the key holds another type.
    pub fn hash(&self) -> Result<Option<&HashObject>, WrongType> {
        match self.item() {
            None => Ok(None),
            Some(item) => match item.object.as_deref() {
                Some(Object::Hash(hash)) => Ok(Some(hash)),
                _ => Err(WrongType),
            },
        }
    }

    /// The sorted set, `Ok(None)` if absent, `Err` if the key holds another type.
    pub fn zset(&self) -> Result<Option<&ZSet>, WrongType> {
        match self.item() {
            None => Ok(None),
            Some(item) => match item.object.as_deref() {
                Some(Object::ZSet(zset)) => Ok(Some(zset)),
                _ => Err(WrongType),
            },
        }
    }

    /// The expiry, if the key exists.
    pub fn expiry(&self) -> Option<Expiry> {
        self.item().map(Item::expiry)
    }

    pub fn flags(&self) -> Option<u32> {
        self.item().map(|item| item.flags)
    }

    /// Stores a string value (any previous type is replaced). Returns the new cas unique.
    pub fn put_string(&mut self, value: &[u8], flags: u32, expiry: Expiry) -> Result<u64, Outcome> {
        if value.len() > self.store.item_size_max {
            return Err(Outcome::TooLarge);
        }
        let item = Item::new(self.key, &[value], flags, expiry, self.now_ms);
        self.put(item)
    }

    fn put(&mut self, item: Item) -> Result<u64, Outcome> {
        self.settle();
        let cas = match self.slot {
            Some(id) => {
                self.store
                    .replace_existing(self.locked, self.shard_index, id, item, None)?
            }
            None => {
                let id =
                    self.store
                        .insert_new(self.locked, self.shard_index, self.hash, item, None)?;
                self.slot = Some(id);
                self.locked.shard.item(id).cas
            }
        };
        self.locked.counters.total_items += 1;
        Ok(cas)
    }

    /// Changes the expiry of an existing key (a new cas unique, as any write); false if absent.
    pub fn set_expiry(&mut self, expiry: Expiry) -> bool {
        let Some(id) = self.slot else { return false };
        let cas = Store::next_cas(self.locked, self.shard_index);
        let item = self.locked.shard.item_mut(id);
        item.expires_at_ms = expiry.as_ms();
        item.cas = cas;
        true
    }

    /// Removes the item and hands it over, to be put under another key (RENAME).
    pub fn take(&mut self) -> Option<Moved> {
        self.settle();
        let id = self.slot.take()?;
        Some(Moved(self.store.remove(self.locked, id, Removal::Moved)))
    }

    /// Puts an item taken from another key here, replacing whatever was here.
    pub fn put_moved(&mut self, moved: Moved) -> Result<(), Outcome> {
        let item = moved.0.rekey(self.key, self.now_ms);
        self.put(item).map(|_| ())
    }

    /// Deletes the key; false if it was absent.
    pub fn remove(&mut self) -> bool {
        self.dirty_charge = None;
        match self.slot.take() {
            Some(id) => {
                self.store.remove(self.locked, id, Removal::Deleted);
                true
            }
            None => false,
        }
    }

    /// The hash for changing, created empty when absent and `create`; `Ok(None)` when absent
    /// and not created. The entry re-charges the item and bumps its cas when the edit ends.
    pub fn hash_mut(&mut self, create: bool) -> Result<Option<&mut HashObject>, Outcome> {
        match self.hash() {
            Err(WrongType) => return Err(Outcome::WrongType),
            Ok(None) if !create => return Ok(None),
            Ok(None) => {
                let mut item = Item::new(self.key, &[], 0, Expiry::Never, self.now_ms);
                item.object = Some(Box::new(Object::Hash(HashObject::new())));
                self.put(item)?;
            }
            Ok(Some(_)) => {}
        }
        let id = self.slot.expect("hash exists or was just created");
        if self.dirty_charge.is_none() {
            self.dirty_charge = Some(self.locked.shard.item(id).charge());
        }
        match self.locked.shard.item_mut(id).object.as_deref_mut() {
            Some(Object::Hash(hash)) => Ok(Some(hash)),
            _ => unreachable!("checked to be a hash above"),
        }
    }

    /// The sorted set for changing, created empty when absent and `create`; `Ok(None)` when
    /// absent and not created. Settled as [`hash_mut`](Self::hash_mut): re-charged, a new cas
    /// unique, and removed if the edit left it empty.
    pub fn zset_mut(&mut self, create: bool) -> Result<Option<&mut ZSet>, Outcome> {
        match self.zset() {
            Err(WrongType) => return Err(Outcome::WrongType),
            Ok(None) if !create => return Ok(None),
            Ok(None) => {
                let mut item = Item::new(self.key, &[], 0, Expiry::Never, self.now_ms);
                item.object = Some(Box::new(Object::ZSet(ZSet::new())));
                self.put(item)?;
            }
            Ok(Some(_)) => {}
        }
        let id = self.slot.expect("zset exists or was just created");
        if self.dirty_charge.is_none() {
            self.dirty_charge = Some(self.locked.shard.item(id).charge());
        }
        match self.locked.shard.item_mut(id).object.as_deref_mut() {
            Some(Object::ZSet(zset)) => Ok(Some(zset)),
            _ => unreachable!("checked to be a zset above"),
        }
    }

    /// Replaces whatever the key holds with `zset` (no expiry), or deletes the key when `zset`
    /// is empty, as Redis's STORE commands do.
    pub fn put_zset(&mut self, zset: ZSet) -> Result<(), Outcome> {
        if zset.is_empty() {
            self.remove();
            return Ok(());
        }
        let mut item = Item::new(self.key, &[], 0, Expiry::Never, self.now_ms);
        item.object = Some(Box::new(Object::ZSet(zset)));
        self.put(item).map(|_| ())
    }

    /// Accounts for changes made through [`hash_mut`](Self::hash_mut).
    fn settle(&mut self) {
        let (Some(old_charge), Some(id)) = (self.dirty_charge.take(), self.slot) else {
            return;
        };
        let empty = match self.locked.shard.item(id).object.as_deref() {
            Some(Object::Hash(hash)) => hash.is_empty(),
            Some(Object::ZSet(zset)) => zset.is_empty(),
            None => false,
        };
        if empty {
            self.remove();
            return;
        }
        let cas = Store::next_cas(self.locked, self.shard_index);
        let now_ms = self.now_ms;
        let item = self.locked.shard.item_mut(id);
        item.cas = cas;
        item.stored_at_ms = now_ms;
        let new_charge = item.charge();
        self.locked.shard.recharge(id, old_charge);
        self.store
            .notify(KeyEvent::Written, self.locked.shard.item(id));
        self.store
            .used_bytes
            .fetch_add(new_charge, std::sync::atomic::Ordering::Relaxed);
        self.store
            .used_bytes
            .fetch_sub(old_charge, std::sync::atomic::Ordering::Relaxed);
    }
}
