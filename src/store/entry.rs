//! Atomic read-modify-write of one key, for commands whose logic does not fit a fixed
//! [`Mutation`](super::Mutation) (most Redis commands: GETEX, SETRANGE, HINCRBYFLOAT, ...).
//!
//! [`Store::edit`] locks the key's shard, hands the closure an [`Entry`], and when the closure
//! returns settles the books: a typed value handed out mutably is re-charged and gets a new
//! cas unique (so WATCH sees the change), an emptied hash or sorted set is removed as Redis
//! removes empty collections, and the store is brought back under its limit after the lock
//! is released. This is the store's one write path: [`Store::apply`] runs memcached's fixed
//! mutations on an entry too (`mutation.rs`). When the entry ends it reports the one
//! [`Effect`] its edit had on the key (the key's final state, or its removal) to the hook.
//! [`Store::peek`] hands out the same entry read-only, without making room first.

use std::cell::OnceCell;

use super::hash::HashObject;
use super::item::{ItemView, Object};
use super::layout::info;
use super::list::ListObject;
use super::set::SetObject;
use super::shard::Shard;
use super::stream::StreamObject;
use super::zset::ZSet;
use super::{
    compress, Effect, Expiry, Found, ItemSpec, KeyKind, KeyPresence, PutCause, Removal, Store,
    StoreError, StoredValue, ValueSpec,
};

/// The key holds a value of another type (Redis `WRONGTYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
pub struct WrongType;

/// What `*_mut` does when the key is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    /// Create an empty collection (it is removed again if the edit leaves it empty).
    Create,
    /// Hand out `None`.
    Leave,
}

/// Whether a rewritten item keeps its fetched, stale and win-token marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    Keep,
    Fresh,
}

/// A value removed by [`Entry::take`], on its way to another key.
pub struct Moved {
    value: MovedValue,
    flags: u32,
    expiry_ms: u64,
}

enum MovedValue {
    Bytes(Vec<u8>),
    Object(Object),
}

/// One key, locked, for the duration of an [`Store::edit`] closure.
pub struct Entry<'s> {
    pub(super) store: &'s Store,
    pub(super) shard: &'s mut Shard,
    pub(super) shard_index: usize,
    pub(super) hash: u64,
    key: &'s [u8],
    pub(super) found: Option<Found>,
    /// Whether the key was live when the entry was opened (a put then changes it rather
    /// than adding it).
    existed: bool,
    pub(super) now_ms: u64,
    /// Bytes of the typed value before it was handed out mutably.
    dirty_bytes: Option<usize>,
    /// The decompressed string value, once asked for.
    decompressed: OnceCell<Vec<u8>>,
    /// What the edit has done to the key so far, reported once when the entry ends.
    change: Option<Change>,
    /// The caller's names for the change (see [`label`](Self::label)).
    labels: Option<Vec<&'static str>>,
}

/// The effect an entry will report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Put(PutCause),
    Removed(KeyKind, Removal),
}

impl Store {
    /// Runs `f` on the entry of `key` with its shard locked, then restores the memory bound.
    /// `f` must be quick.
    pub fn edit<R>(&self, key: &[u8], now_ms: u64, f: impl FnOnce(&mut Entry<'_>) -> R) -> R {
        self.run_due_flush(now_ms);
        self.make_room(now_ms);
        let result = self.locked(key, now_ms, f);
        self.make_room(now_ms);
        result
    }

    /// Runs `f` on the entry of `key` read-only (EXISTS, TTL, WATCH, a check before a move):
    /// no room is made and nothing is written, except that an item found expired is removed.
    pub fn peek<R>(&self, key: &[u8], now_ms: u64, f: impl FnOnce(&Entry<'_>) -> R) -> R {
        self.run_due_flush(now_ms);
        self.locked(key, now_ms, |entry| f(entry))
    }

    /// The locked path under `edit`, `peek` and `apply`: finds the key's live record with its
    /// shard held and hands `f` the entry; the entry's drop settles and reports the effect.
    pub(super) fn locked<R>(
        &self,
        key: &[u8],
        now_ms: u64,
        f: impl FnOnce(&mut Entry<'_>) -> R,
    ) -> R {
        let hash = self.hash(key);
        let shard_index = Self::shard_of(hash);
        let mut guard = self.shards[shard_index].lock();
        let shard = &mut *guard;
        let found = self.find_live(shard, hash, key, now_ms);
        let mut entry = Entry {
            store: self,
            shard,
            shard_index,
            hash,
            key,
            existed: found.is_some(),
            found,
            now_ms,
            dirty_bytes: None,
            decompressed: OnceCell::new(),
            change: None,
            labels: None,
        };
        // Dropping the entry settles it, also when `f` panics (see `impl Drop`).
        f(&mut entry)
    }
}

/// Settles the books however the closure ended, also while unwinding from a panic in it,
/// then reports the edit's effect. The server contains a panic in a command (closing only
/// its connection), so the store must stay true after one: without this, a hash or sorted set
/// grown in place before the panic keeps its old charge, and removing it later subtracts more
/// heap bytes than were ever added (the counter wraps and eviction empties the store).
impl Drop for Entry<'_> {
    fn drop(&mut self) {
        self.settle();
        self.report();
    }
}

impl Entry<'_> {
    pub fn key(&self) -> &[u8] {
        self.key
    }

    pub fn exists(&self) -> bool {
        self.found.is_some()
    }

    /// Names this edit's change for the effect it reports, after any name given before (an
    /// opaque word to the store; the command layer passes Redis's event names).
    pub fn label(&mut self, name: &'static str) {
        self.labels.get_or_insert_with(Vec::new).push(name);
    }

    /// Says the change names no event, unless a name was given (a write that changed
    /// nothing a client would be told about, such as ZADD of a member at its score).
    pub fn unlabelled(&mut self) {
        self.labels.get_or_insert_with(Vec::new);
    }

    /// Backdates the key's last access to `idle_secs` before now (RESTORE IDLETIME): OBJECT
    /// IDLETIME and the eviction policy see it as idle that long.
    pub fn set_idle(&mut self, idle_secs: u64) {
        let Some(found) = self.found else {
            return;
        };
        let now_s = u64::from(super::seconds(self.now_ms));
        let at = now_s.saturating_sub(idle_secs) as u32;
        self.store
            .item_mut(self.shard, found.entry)
            .set_access_s(at);
    }

    /// Sets the names of this edit's change, replacing any given before.
    pub fn set_labels(&mut self, names: &[&'static str]) {
        self.labels = Some(names.to_vec());
    }

    /// The string value (decompressed) or the object, if the key exists.
    fn value(&self) -> Option<(&[u8], Option<&Object>)> {
        let found = self.found?;
        let shard = &*self.shard;
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.store.item_at(shard, found.entry) };
        Some(match Store::stored_value(shard, item) {
            StoredValue::Plain(bytes) => (bytes, None),
            StoredValue::Compressed(stored) => {
                let value = self.decompressed.get_or_init(|| {
                    let mut out = Vec::new();
                    compress::decompress(stored, &mut out);
                    out
                });
                (&value[..], None)
            }
            StoredValue::Object(object) => (&[][..], Some(object)),
            StoredValue::Chunked(table) => {
                let value = self.decompressed.get_or_init(|| {
                    let mut assembled = Vec::new();
                    // SAFETY: `table` is the chunk table of a record just read from this shard's index, which is held.
                    unsafe { self.store.assemble(shard, table, &mut assembled) };
                    if table.compressed() {
                        let mut out = Vec::new();
                        compress::decompress(&assembled, &mut out);
                        out
                    } else {
                        assembled
                    }
                });
                (&value[..], None)
            }
        })
    }

    /// A read-only view of the item (no LRU bump, no win tokens).
    pub fn view(&self) -> Option<ItemView<'_>> {
        let found = self.found?;
        let (value, object) = self.value()?;
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.store.item_at(self.shard, found.entry) };
        let info_bits = item.info();
        Some(ItemView {
            key: item.key(),
            value,
            object,
            flags: item.flags(),
            cas: item.cas(self.shard.last_cas),
            expiry_ms: item.expiry_ms(),
            stale: info_bits & info::STALE != 0,
            now_ms: self.now_ms,
            fetched_before: info_bits & info::FETCHED != 0,
            last_access_before_ms: item.access_s() as u64 * 1000,
            won: false,
            win_already_sent: false,
            counter: found.entry.counter(),
            pin: None,
        })
    }

    /// The string value, `Ok(None)` if the key is absent, `Err` if it holds another type.
    pub fn string(&self) -> Result<Option<&[u8]>, WrongType> {
        match self.value() {
            None => Ok(None),
            Some((_, Some(_))) => Err(WrongType),
            Some((bytes, None)) => Ok(Some(bytes)),
        }
    }

    /// The hash, `Ok(None)` if absent, `Err` if the key holds another type.
    pub fn hash(&self) -> Result<Option<&HashObject>, WrongType> {
        match self.value() {
            None => Ok(None),
            Some((_, Some(Object::Hash(hash)))) => Ok(Some(hash)),
            Some(_) => Err(WrongType),
        }
    }

    /// The sorted set, `Ok(None)` if absent, `Err` if the key holds another type.
    pub fn zset(&self) -> Result<Option<&ZSet>, WrongType> {
        match self.value() {
            None => Ok(None),
            Some((_, Some(Object::ZSet(zset)))) => Ok(Some(zset)),
            Some(_) => Err(WrongType),
        }
    }

    /// The expiry, if the key exists.
    pub fn expiry(&self) -> Option<Expiry> {
        let found = self.found?;
        Some(Expiry::from_ms(
            // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
            unsafe { self.store.item_at(self.shard, found.entry) }.expiry_ms(),
        ))
    }

    pub fn flags(&self) -> Option<u32> {
        let found = self.found?;
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        Some(unsafe { self.store.item_at(self.shard, found.entry) }.flags())
    }

    /// The cas unique, if the key exists.
    pub fn cas(&self) -> Option<u64> {
        let found = self.found?;
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        Some(unsafe { self.store.item_at(self.shard, found.entry) }.cas(self.shard.last_cas))
    }

    /// Stores a string value (any previous type is replaced). Returns the new cas unique.
    /// The value is bounded by the memory limit only: the caller applies its protocol's size
    /// limit (RESP's `proto-max-bulk-len`; memcached's item size goes through `apply`).
    pub fn put_string(
        &mut self,
        value: &[u8],
        flags: u32,
        expiry: Expiry,
    ) -> Result<u64, StoreError> {
        self.put_string_with_cas(value, flags, expiry, None)
    }

    /// [`put_string`](Self::put_string) with the cas unique the client chose (`None`: the
    /// shard's next).
    pub fn put_string_with_cas(
        &mut self,
        value: &[u8],
        flags: u32,
        expiry: Expiry,
        cas: Option<u64>,
    ) -> Result<u64, StoreError> {
        let key = self.key;
        let mut spec = ItemSpec::string(key, value, flags, expiry.as_ms());
        spec.cas = cas;
        self.put(spec)
    }

    /// Replaces the string value, keeping the item's flags and access counter (a new key
    /// gets flags 0), with a new expiry and cas (`None`: the shard's next); `state` says
    /// whether its fetched, stale and win marks stay.
    pub fn rewrite_string(
        &mut self,
        value: &[u8],
        expiry: Expiry,
        cas: Option<u64>,
        state: ItemState,
    ) -> Result<u64, StoreError> {
        let Some(found) = self.found else {
            return self.put_string_with_cas(value, 0, expiry, cas);
        };
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.store.item_at(self.shard, found.entry) };
        let key = self.key;
        let mut spec = ItemSpec::string(key, value, item.flags(), expiry.as_ms());
        if state == ItemState::Keep {
            spec.state = item.info() & info::STATE_MASK;
        }
        spec.cas = cas;
        spec.counter = Some(found.entry.counter());
        self.put(spec)
    }

    pub(super) fn put(&mut self, spec: ItemSpec<'_>) -> Result<u64, StoreError> {
        self.settle();
        let (found, cas) = self.store.put_item(
            self.shard,
            self.shard_index,
            self.hash,
            self.found,
            spec,
            self.now_ms,
        )?;
        self.found = Some(found);
        self.decompressed = OnceCell::new();
        self.shard.counters.total_items += 1;
        self.change = Some(Change::Put(PutCause::Written));
        Ok(cas)
    }

    /// Changes the expiry of an existing key (a new cas unique, as any write); false if absent.
    pub fn set_expiry(&mut self, expiry: Expiry) -> bool {
        self.exists() && self.restamp(Some(expiry.as_ms()), Some(None)).is_ok()
    }

    /// Removes the item and hands its value over, to be put under another key (RENAME).
    pub fn take(&mut self) -> Option<Moved> {
        self.settle();
        let found = self.found?;
        let store = self.store;
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { store.item_at(self.shard, found.entry) };
        let flags = item.flags();
        let expiry_ms = item.expiry_ms();
        let object_slot = (item.kind() == info::KIND_TYPED).then(|| item.object_id());
        let bytes = match self.value() {
            Some((bytes, None)) => bytes.to_vec(),
            _ => Vec::new(),
        };
        let kind = Store::key_kind(self.shard, item);
        store.unlink(self.shard, found, Removal::Moved);
        self.change = Some(Change::Removed(kind, Removal::Moved));
        self.found = None;
        self.decompressed = OnceCell::new();
        let value = match object_slot {
            Some(id) => {
                let object = self.shard.objects.remove(id);
                store.sub_heap(object.bytes());
                MovedValue::Object(object)
            }
            None => MovedValue::Bytes(bytes),
        };
        Some(Moved {
            value,
            flags,
            expiry_ms,
        })
    }

    /// A copy of the value, its flags and its expiry, for another key (COPY); the key is left
    /// as it is. `None` if absent.
    pub fn copy_out(&self) -> Option<Moved> {
        let found = self.found?;
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.store.item_at(self.shard, found.entry) };
        let (flags, expiry_ms) = (item.flags(), item.expiry_ms());
        let value = match self.value()? {
            (_, Some(object)) => MovedValue::Object(object.duplicate()),
            (bytes, None) => MovedValue::Bytes(bytes.to_vec()),
        };
        Some(Moved {
            value,
            flags,
            expiry_ms,
        })
    }

    /// Puts a value taken from another key here, replacing whatever was here.
    pub fn put_moved(&mut self, moved: Moved) -> Result<(), StoreError> {
        let key = self.key;
        let Moved {
            value,
            flags,
            expiry_ms,
        } = moved;
        let spec = |value| ItemSpec::new(key, value, flags, expiry_ms);
        match value {
            MovedValue::Bytes(bytes) => self.put(spec(ValueSpec::Bytes(&bytes))).map(|_| ()),
            MovedValue::Object(object) => self.put(spec(ValueSpec::NewObject(object))).map(|_| ()),
        }
    }

    /// Deletes the key; false if it was absent.
    pub fn remove(&mut self) -> bool {
        self.dirty_bytes = None;
        match self.found.take() {
            Some(found) => {
                // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
                let item = unsafe { self.store.item_at(self.shard, found.entry) };
                let kind = Store::key_kind(self.shard, item);
                self.store.unlink(self.shard, found, Removal::Deleted);
                self.change = Some(Change::Removed(kind, Removal::Deleted));
                self.decompressed = OnceCell::new();
                true
            }
            None => false,
        }
    }

    /// Creates the typed value when absent and `create`; hands out its heap slot mutably,
    /// remembering its size for [`settle`](Self::settle).
    fn object_mut(&mut self, create: impl FnOnce() -> Object) -> Result<&mut Object, StoreError> {
        if self.found.is_none() {
            let key = self.key;
            self.put(ItemSpec::object(key, create()))?;
        }
        let found = self.found.expect("exists or was just created");
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let id = unsafe { self.store.item_at(self.shard, found.entry) }.object_id();
        if self.dirty_bytes.is_none() {
            self.dirty_bytes = Some(self.shard.objects[id].bytes());
        }
        Ok(&mut self.shard.objects[id])
    }

    /// The hash for changing, created empty when absent if `missing` says so; `Ok(None)`
    /// when absent and not created. The entry re-charges the item and bumps its cas when the edit ends.
    pub fn hash_mut(&mut self, missing: IfMissing) -> Result<Option<&mut HashObject>, StoreError> {
        match self.hash() {
            Err(WrongType) => return Err(StoreError::WrongType),
            Ok(None) if missing == IfMissing::Leave => return Ok(None),
            _ => {}
        }
        match self.object_mut(|| Object::Hash(HashObject::new()))? {
            Object::Hash(hash) => Ok(Some(hash)),
            _ => unreachable!("checked to be a hash above"),
        }
    }

    /// The sorted set for changing, created empty when absent and `create`; `Ok(None)` when
    /// absent and not created. Settled as [`hash_mut`](Self::hash_mut): re-charged, a new cas
    /// unique, and removed if the edit left it empty.
    pub fn zset_mut(&mut self, missing: IfMissing) -> Result<Option<&mut ZSet>, StoreError> {
        match self.zset() {
            Err(WrongType) => return Err(StoreError::WrongType),
            Ok(None) if missing == IfMissing::Leave => return Ok(None),
            _ => {}
        }
        match self.object_mut(|| Object::ZSet(ZSet::new()))? {
            Object::ZSet(zset) => Ok(Some(zset)),
            _ => unreachable!("checked to be a zset above"),
        }
    }

    /// The list, `Ok(None)` if absent, `Err` if the key holds another type.
    pub fn list(&self) -> Result<Option<&ListObject>, WrongType> {
        match self.value() {
            None => Ok(None),
            Some((_, Some(Object::List(list)))) => Ok(Some(list)),
            Some(_) => Err(WrongType),
        }
    }

    /// The list for changing, created empty when absent if `missing` says so; `Ok(None)`
    /// when absent and not created. Settled as [`hash_mut`](Self::hash_mut).
    pub fn list_mut(&mut self, missing: IfMissing) -> Result<Option<&mut ListObject>, StoreError> {
        match self.list() {
            Err(WrongType) => return Err(StoreError::WrongType),
            Ok(None) if missing == IfMissing::Leave => return Ok(None),
            _ => {}
        }
        match self.object_mut(|| Object::List(ListObject::new()))? {
            Object::List(list) => Ok(Some(list)),
            _ => unreachable!("checked to be a list above"),
        }
    }

    /// The set, `Ok(None)` if absent, `Err` if the key holds another type.
    pub fn set(&self) -> Result<Option<&SetObject>, WrongType> {
        match self.value() {
            None => Ok(None),
            Some((_, Some(Object::Set(set)))) => Ok(Some(set)),
            Some(_) => Err(WrongType),
        }
    }

    /// The set for changing, created empty when absent if `missing` says so; `Ok(None)`
    /// when absent and not created. Settled as [`hash_mut`](Self::hash_mut).
    pub fn set_mut(&mut self, missing: IfMissing) -> Result<Option<&mut SetObject>, StoreError> {
        match self.set() {
            Err(WrongType) => return Err(StoreError::WrongType),
            Ok(None) if missing == IfMissing::Leave => return Ok(None),
            _ => {}
        }
        match self.object_mut(|| Object::Set(SetObject::new()))? {
            Object::Set(set) => Ok(Some(set)),
            _ => unreachable!("checked to be a set above"),
        }
    }

    /// The stream, `Ok(None)` if absent, `Err` if the key holds another type.
    pub fn stream(&self) -> Result<Option<&StreamObject>, WrongType> {
        match self.value() {
            None => Ok(None),
            Some((_, Some(Object::Stream(stream)))) => Ok(Some(stream)),
            Some(_) => Err(WrongType),
        }
    }

    /// The stream for changing, created empty when absent if `missing` says so; `Ok(None)`
    /// when absent and not created. Settled as [`hash_mut`](Self::hash_mut) (a stream is
    /// never removed for being empty).
    pub fn stream_mut(
        &mut self,
        missing: IfMissing,
    ) -> Result<Option<&mut StreamObject>, StoreError> {
        match self.stream() {
            Err(WrongType) => return Err(StoreError::WrongType),
            Ok(None) if missing == IfMissing::Leave => return Ok(None),
            _ => {}
        }
        match self.object_mut(|| Object::Stream(Box::default()))? {
            Object::Stream(stream) => Ok(Some(stream)),
            _ => unreachable!("checked to be a stream above"),
        }
    }

    /// Puts a typed value (replacing whatever the key holds) with this expiry: a value read
    /// back from a snapshot.
    pub fn put_object(&mut self, object: Object, expiry: Expiry) -> Result<(), StoreError> {
        let key = self.key;
        self.put(ItemSpec::new(
            key,
            ValueSpec::NewObject(object),
            0,
            expiry.as_ms(),
        ))
        .map(|_| ())
    }

    /// Replaces whatever the key holds with `set` (no expiry), or deletes the key when `set`
    /// is empty, as Redis's STORE commands do.
    pub fn put_set(&mut self, set: SetObject) -> Result<(), StoreError> {
        if set.is_empty() {
            self.remove();
            return Ok(());
        }
        let key = self.key;
        self.put(ItemSpec::object(key, Object::Set(set)))
            .map(|_| ())
    }

    /// Replaces whatever the key holds with `zset` (no expiry), or deletes the key when `zset`
    /// is empty, as Redis's STORE commands do.
    pub fn put_zset(&mut self, zset: ZSet) -> Result<(), StoreError> {
        if zset.is_empty() {
            self.remove();
            return Ok(());
        }
        let key = self.key;
        self.put(ItemSpec::object(key, Object::ZSet(zset)))
            .map(|_| ())
    }

    /// Gives the record a new cas from the shard's counter (WATCH sees the change).
    fn bump_cas(&mut self, found: Found) {
        if let Ok((found, _)) = self.store.set_cas(
            self.shard,
            self.shard_index,
            self.hash,
            found,
            None,
            self.now_ms,
        ) {
            self.found = Some(found);
        }
    }

    /// Notes a new version of the item; a rewrite of the value outranks a restamp.
    pub(super) fn mark_put(&mut self, cause: PutCause) {
        if self.change != Some(Change::Put(PutCause::Written)) {
            self.change = Some(Change::Put(cause));
        }
    }

    /// Reports the edit's effect on the key, once.
    fn report(&mut self) {
        if self.change.is_some() {
            self.shard.counters.changes += 1;
        }
        match self.change.take() {
            None => {}
            Some(Change::Put(cause)) => {
                if let Some(found) = self.found {
                    let labels = self.labels.as_deref();
                    let presence = if self.existed {
                        KeyPresence::Existing
                    } else {
                        KeyPresence::Added
                    };
                    self.store
                        .report_put(self.shard, found, (cause, presence), labels);
                }
            }
            Some(Change::Removed(kind, cause)) => self.store.report(&Effect::Removed {
                key: self.key,
                kind,
                cause,
                labels: self.labels.as_deref(),
            }),
        }
    }

    /// Accounts for changes made through [`hash_mut`](Self::hash_mut) and
    /// [`zset_mut`](Self::zset_mut).
    fn settle(&mut self) {
        let (Some(old_bytes), Some(found)) = (self.dirty_bytes.take(), self.found) else {
            return;
        };
        let store = self.store;
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { store.item_at(self.shard, found.entry) };
        let id = item.object_id();
        let object = &self.shard.objects[id];
        let (empty, new_bytes) = (object.is_empty(), object.bytes());
        // Keep the heap and pool counters equal to the object's size before any removal.
        let pool = store.pools.pool_of(self.key);
        store
            .heap_bytes
            .fetch_add(new_bytes, std::sync::atomic::Ordering::Relaxed);
        store.sub_heap(old_bytes);
        self.shard.pools[pool].bytes += new_bytes as u64;
        self.shard.pools[pool].bytes -= old_bytes as u64;
        if empty {
            self.remove();
            return;
        }
        self.bump_cas(found);
        self.change = Some(Change::Put(PutCause::Written));
    }
}
