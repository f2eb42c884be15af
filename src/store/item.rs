//! What the store's users see of an item: its expiry, its typed value, and a read-only view.
//!
//! Items themselves are records in segments (see [`super::layout`]); a view copies out the
//! small fields and borrows key and value for the duration of one read closure.

/// When an item stops being visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    /// Unix time in milliseconds; the item is gone once `now >= at`.
    AtMs(u64),
}

impl Expiry {
    pub(crate) fn as_ms(self) -> u64 {
        match self {
            Expiry::Never => 0,
            // Stored in 48 bits (see the layout): beyond year 10,000 means never in practice.
            Expiry::AtMs(at) => at.clamp(1, (1 << 48) - 1),
        }
    }

    pub(crate) fn from_ms(ms: u64) -> Self {
        if ms == 0 {
            Expiry::Never
        } else {
            Expiry::AtMs(ms)
        }
    }
}

/// Header bytes of the common item (see [`super::layout`]), reported as part of an item's
/// size (meta debug `size=`).
pub const ITEM_OVERHEAD: usize = 13;

/// A typed value (RESP data types); strings live in the segment instead.
pub enum Object {
    Hash(crate::store::hash::HashObject),
    ZSet(crate::store::zset::ZSet),
    List(crate::store::list::ListObject),
    Set(crate::store::set::SetObject),
    Stream(Box<crate::store::stream::StreamObject>),
}

impl Object {
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Object::Hash(hash) => hash.bytes(),
            Object::ZSet(zset) => zset.bytes(),
            Object::List(list) => list.bytes(),
            Object::Set(set) => set.bytes(),
            Object::Stream(stream) => stream.bytes(),
        }
    }

    /// A deep copy (COPY): the same elements, rebuilt through each type's own inserts so the
    /// copy picks its encoding as a new value would.
    pub(crate) fn duplicate(&self) -> Object {
        match self {
            Object::Hash(hash) => Object::Hash(hash.duplicate()),
            Object::ZSet(zset) => {
                let mut copy = crate::store::zset::ZSet::new();
                for (member, score) in zset.iter() {
                    copy.insert(member, score);
                }
                Object::ZSet(copy)
            }
            Object::List(list) => {
                let mut copy = crate::store::list::ListObject::new();
                for element in list.iter() {
                    copy.push(crate::store::list::End::Tail, element);
                }
                Object::List(copy)
            }
            Object::Stream(stream) => Object::Stream(stream.clone()),
            Object::Set(set) => {
                let mut copy = crate::store::set::SetObject::new();
                for member in set.iter() {
                    copy.insert(&member);
                }
                Object::Set(copy)
            }
        }
    }

    /// An emptied collection is removed, as Redis removes empty collections.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Object::Hash(hash) => hash.is_empty(),
            Object::ZSet(zset) => zset.is_empty(),
            Object::List(list) => list.is_empty(),
            Object::Set(set) => set.is_empty(),
            Object::Stream(stream) => stream.is_empty(),
        }
    }
}

/// What a reader sees of an item, only for the duration of the read closure.
pub struct ItemView<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
    pub(crate) object: Option<&'a Object>,
    pub(crate) flags: u32,
    pub(crate) cas: u64,
    pub(crate) expiry_ms: u64,
    pub(crate) stale: bool,
    pub(crate) now_ms: u64,
    /// The item's `fetched` bit and last access before this read.
    pub(crate) fetched_before: bool,
    pub(crate) last_access_before_ms: u64,
    /// This read won the right to recache the item (meta `W`).
    pub(crate) won: bool,
    /// Someone else already holds the win token (meta `Z`).
    pub(crate) win_already_sent: bool,
    /// The index entry's access counter (the LFU counter under the LFU policies).
    pub(crate) counter: u8,
    /// Where the value lives when it can be sent from segment memory (a raw value).
    pub(crate) pin: Option<super::pin::ValuePin<'a>>,
}

impl<'a> ItemView<'a> {
    pub fn key(&self) -> &'a [u8] {
        self.key
    }
    /// The string value (empty for a typed value: check [`object`](Self::object) first).
    pub fn value(&self) -> &'a [u8] {
        self.value
    }
    /// The typed value, if this item is not a string.
    pub fn object(&self) -> Option<&'a Object> {
        self.object
    }
    pub fn flags(&self) -> u32 {
        self.flags
    }
    pub fn cas(&self) -> u64 {
        self.cas
    }
    /// Whole seconds until expiry (`None` = never expires), rounded as memcached does.
    pub fn ttl_secs(&self) -> Option<i64> {
        match self.expiry() {
            Expiry::Never => None,
            Expiry::AtMs(at) => Some((at.saturating_sub(self.now_ms) as i64 + 999) / 1000),
        }
    }
    pub fn expiry(&self) -> Expiry {
        Expiry::from_ms(self.expiry_ms)
    }
    /// Seconds since the previous access.
    pub fn idle_secs(&self) -> u64 {
        (self.now_ms / 1000).saturating_sub(self.last_access_before_ms / 1000)
    }
    pub fn fetched_before(&self) -> bool {
        self.fetched_before
    }
    pub fn is_stale(&self) -> bool {
        self.stale
    }
    pub fn won(&self) -> bool {
        self.won
    }
    pub fn win_already_sent(&self) -> bool {
        self.win_already_sent
    }
    /// The access frequency counter (Redis `OBJECT FREQ`; meaningful under LFU policies).
    pub fn frequency(&self) -> u8 {
        self.counter
    }
    /// The value, held in segment memory past the read (for a reply written from it while
    /// the socket drains), if it is stored raw in a segment; `None` for values assembled or
    /// decompressed for this read, typed values and empty ones.
    pub fn pin_value(&self) -> Option<super::PinnedValue> {
        let pin = self.pin.as_ref()?;
        (!self.value.is_empty()).then(|| pin.pin(self.value))
    }
}
