//! Consumer groups of a stream: each group's last delivered id, its pending entries list
//! (PEL: delivered, not yet acknowledged, with owner, delivery time and count) and its
//! consumers, each with its own view of the PEL, as Redis 7.0 keeps them.
//!
//! Invariant: an id is in a consumer's `pel` exactly when the group's PEL holds it with that
//! consumer as owner. Times are the caller's `now_ms` (no clock here); no protocol, no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{StreamError, StreamId, StreamObject};

/// A pending entry: who has it, since when, how many times it was delivered.
#[derive(Debug, Clone)]
pub struct Nack {
    pub consumer: Arc<[u8]>,
    pub delivery_time: u64,
    pub delivery_count: u64,
}

/// A consumer: when it was last active and the entries it holds.
#[derive(Debug, Clone, Default)]
pub struct Consumer {
    pub seen_time: u64,
    pub pel: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries read so far (`None`: unknown, Redis's -1).
    pub entries_read: Option<u64>,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Arc<[u8]>, Consumer>,
}

/// XPENDING's summary of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSummary {
    pub count: usize,
    /// First and last pending ids (None when nothing is pending).
    pub bounds: Option<(StreamId, StreamId)>,
    /// Consumers with pending entries, by name, and how many each holds.
    pub per_consumer: Vec<(Vec<u8>, usize)>,
}

/// What XCLAIM / XAUTOCLAIM may change of a claimed entry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Claim {
    /// Only entries idle at least this long (ms).
    pub min_idle_ms: u64,
    /// The delivery time to set (IDLE/TIME); `None` = now.
    pub delivery_time: Option<u64>,
    pub retry_count: Option<u64>,
    /// Create the pending entry if the id exists but is not pending.
    pub force: bool,
    /// Reply ids only, and leave the delivery count alone.
    pub just_id: bool,
}

/// XAUTOCLAIM's scan: from where, how idle, how many, ids only.
#[derive(Debug, Clone, Copy)]
pub struct AutoClaim {
    pub start: StreamId,
    pub min_idle_ms: u64,
    pub count: usize,
    pub just_id: bool,
}

const NACK_BYTES: usize = 96;
const CONSUMER_BYTES: usize = 96;

impl Group {
    pub(super) fn bytes(&self) -> usize {
        64 + self.pel.len() * NACK_BYTES
            + self
                .consumers
                .iter()
                .map(|(name, c)| name.len() + CONSUMER_BYTES + c.pel.len() * 24)
                .sum::<usize>()
    }

    /// The consumer's name as stored, created if absent; marks it seen at `now_ms`.
    fn consumer(&mut self, name: &[u8], now_ms: u64) -> Arc<[u8]> {
        if let Some((key, _)) = self.consumers.get_key_value(name) {
            let key = key.clone();
            if let Some(consumer) = self.consumers.get_mut(name) {
                consumer.seen_time = now_ms;
            }
            return key;
        }
        let key: Arc<[u8]> = name.into();
        self.consumers.insert(
            key.clone(),
            Consumer {
                seen_time: now_ms,
                pel: BTreeSet::new(),
            },
        );
        key
    }

    /// Gives pending entry `id` to `owner` (creating the nack if absent), delivered at `time`.
    fn assign(&mut self, id: StreamId, owner: &Arc<[u8]>, time: u64, count: u64) {
        if let Some(old) = self.pel.get(&id) {
            if old.consumer != *owner {
                let old_owner = old.consumer.clone();
                if let Some(c) = self.consumers.get_mut(&old_owner) {
                    c.pel.remove(&id);
                }
            }
        }
        self.pel.insert(
            id,
            Nack {
                consumer: owner.clone(),
                delivery_time: time,
                delivery_count: count,
            },
        );
        if let Some(c) = self.consumers.get_mut(owner) {
            c.pel.insert(id);
        }
    }

    /// Removes pending entry `id`; false if it was not pending.
    fn unpend(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(nack) => {
                if let Some(c) = self.consumers.get_mut(&nack.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    pub fn summary(&self) -> PendingSummary {
        let bounds = self
            .pel
            .keys()
            .next()
            .zip(self.pel.keys().next_back())
            .map(|(a, b)| (*a, *b));
        PendingSummary {
            count: self.pel.len(),
            bounds,
            per_consumer: self
                .consumers
                .iter()
                .filter(|(_, c)| !c.pel.is_empty())
                .map(|(name, c)| (name.to_vec(), c.pel.len()))
                .collect(),
        }
    }
}

impl StreamObject {
    pub fn groups(&self) -> impl ExactSizeIterator<Item = (&[u8], &Group)> {
        self.groups.iter().map(|(k, g)| (&k[..], g))
    }

    pub fn group(&self, name: &[u8]) -> Option<&Group> {
        self.groups.get(name)
    }

    fn group_mut(&mut self, name: &[u8]) -> Result<&mut Group, StreamError> {
        self.groups.get_mut(name).ok_or(StreamError::NoGroup)
    }

    /// XGROUP CREATE: `id` None = `$` (the last id).
    pub fn create_group(
        &mut self,
        name: &[u8],
        id: Option<StreamId>,
        entries_read: Option<u64>,
    ) -> Result<(), StreamError> {
        if self.groups.contains_key(name) {
            return Err(StreamError::BusyGroup);
        }
        let group = Group {
            last_id: id.unwrap_or(self.last_id),
            entries_read,
            ..Group::default()
        };
        self.groups.insert(name.into(), group);
        Ok(())
    }

    /// XGROUP SETID: `id` None = `$`.
    pub fn set_group_id(
        &mut self,
        name: &[u8],
        id: Option<StreamId>,
        entries_read: Option<u64>,
    ) -> Result<(), StreamError> {
        let last = self.last_id;
        let group = self.group_mut(name)?;
        group.last_id = id.unwrap_or(last);
        group.entries_read = entries_read;
        Ok(())
    }

    pub fn destroy_group(&mut self, name: &[u8]) -> bool {
        self.groups.remove(name).is_some()
    }

    /// XGROUP CREATECONSUMER: true if created.
    pub fn create_consumer(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        now_ms: u64,
    ) -> Result<bool, StreamError> {
        let group = self.group_mut(group)?;
        if group.consumers.contains_key(consumer) {
            return Ok(false);
        }
        group.consumer(consumer, now_ms);
        Ok(true)
    }

    /// XGROUP DELCONSUMER: the consumer's pending count (its entries leave the PEL).
    pub fn delete_consumer(&mut self, group: &[u8], consumer: &[u8]) -> Result<usize, StreamError> {
        let group = self.group_mut(group)?;
        let Some(gone) = group.consumers.remove(consumer) else {
            return Ok(0);
        };
        for id in &gone.pel {
            group.pel.remove(id);
        }
        Ok(gone.pel.len())
    }

    /// XREADGROUP `>`: delivers up to `count` (0 = all) entries after the group's last id to
    /// `consumer`, recording them pending unless `noack`. Returns the delivered ids.
    pub fn read_new(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        count: usize,
        noack: bool,
        now_ms: u64,
    ) -> Result<Vec<StreamId>, StreamError> {
        let start = self.group_mut(group)?.last_id.incr();
        let ids: Vec<StreamId> = match start {
            Some(start) => {
                let ids = self.range(start, StreamId::MAX, false).map(|e| e.id);
                if count > 0 {
                    ids.take(count).collect()
                } else {
                    ids.collect()
                }
            }
            None => Vec::new(),
        };
        if ids.is_empty() {
            // Nothing to deliver: the consumer is not created (Redis serves nothing).
            return Ok(ids);
        }
        let counters: Vec<Option<u64>> = ids
            .iter()
            .map(|&id| {
                if self.has_tombstones(id, StreamId::MAX) {
                    None
                } else {
                    Some(0)
                }
            })
            .collect();
        let estimates: Vec<Option<u64>> = ids
            .iter()
            .map(|&id| self.estimate_read_counter(id))
            .collect();
        let added = self.entries_added;
        let group = self.group_mut(group)?;
        let owner = group.consumer(consumer, now_ms);
        for (i, &id) in ids.iter().enumerate() {
            if id > group.last_id {
                match (group.entries_read, counters[i]) {
                    (Some(read), Some(_)) => group.entries_read = Some(read + 1),
                    _ if added > 0 => group.entries_read = estimates[i],
                    _ => {}
                }
                group.last_id = id;
            }
            if !noack {
                group.assign(id, &owner, now_ms, 1);
            }
        }
        Ok(ids)
    }

    /// XREADGROUP with an id: the consumer's own pending entries from `start`, up to `count`
    /// (0 = all), each with whether the entry still exists; existing ones count a delivery.
    pub fn read_history(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        start: StreamId,
        count: usize,
        now_ms: u64,
    ) -> Result<Vec<(StreamId, bool)>, StreamError> {
        let group_ref = self.groups.get(group).ok_or(StreamError::NoGroup)?;
        let ids: Vec<StreamId> = match group_ref.consumers.get(consumer) {
            Some(c) => {
                let ids = c.pel.range(start..).copied();
                if count > 0 {
                    ids.take(count).collect()
                } else {
                    ids.collect()
                }
            }
            None => Vec::new(),
        };
        let exists: Vec<bool> = ids.iter().map(|&id| self.get(id).is_some()).collect();
        let group = self.group_mut(group)?;
        group.consumer(consumer, now_ms);
        for (id, present) in ids.iter().zip(&exists) {
            if *present {
                if let Some(nack) = group.pel.get_mut(id) {
                    nack.delivery_time = now_ms;
                    nack.delivery_count += 1;
                }
            }
        }
        Ok(ids.into_iter().zip(exists).collect())
    }

    /// XACK: how many of `ids` were pending.
    pub fn ack(&mut self, group: &[u8], ids: &[StreamId]) -> usize {
        match self.groups.get_mut(group) {
            Some(group) => ids.iter().filter(|&&id| group.unpend(id)).count(),
            None => 0,
        }
    }

    /// XCLAIM: gives the pending entries `ids` (idle long enough) to `consumer`; returns the
    /// claimed ids. Pending ids whose entry was deleted leave the PEL and are not returned.
    pub fn claim(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        ids: &[StreamId],
        claim: Claim,
        last_id: Option<StreamId>,
        now_ms: u64,
    ) -> Result<Vec<StreamId>, StreamError> {
        let exists: Vec<bool> = ids.iter().map(|&id| self.get(id).is_some()).collect();
        let group = self.group_mut(group)?;
        if let Some(last) = last_id {
            if last > group.last_id {
                group.last_id = last;
            }
        }
        let time = claim.delivery_time.unwrap_or(now_ms);
        let mut owner: Option<Arc<[u8]>> = None;
        let mut claimed = Vec::new();
        for (&id, &present) in ids.iter().zip(&exists) {
            if !present {
                group.unpend(id);
                continue;
            }
            let nack = group.pel.get(&id);
            let fresh = nack.is_none();
            if fresh && !claim.force {
                continue;
            }
            if let Some(nack) = nack {
                if claim.min_idle_ms > 0
                    && now_ms.saturating_sub(nack.delivery_time) < claim.min_idle_ms
                {
                    continue;
                }
            }
            let owner = owner
                .get_or_insert_with(|| group.consumer(consumer, now_ms))
                .clone();
            let old_count = group.pel.get(&id).map_or(1, |n| n.delivery_count);
            let count = match claim.retry_count {
                Some(n) => n,
                None if !claim.just_id => old_count + 1,
                None => old_count,
            };
            group.assign(id, &owner, time, count);
            claimed.push(id);
        }
        Ok(claimed)
    }

    /// XAUTOCLAIM: scans the PEL from `start` for at most `count` entries idle at least
    /// `min_idle_ms` (looking at no more than `count * 10`); returns the claimed ids, the
    /// id to continue from (0-0 at the end) and the pending ids found deleted (removed).
    pub fn auto_claim(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        scan: AutoClaim,
        now_ms: u64,
    ) -> Result<(Vec<StreamId>, StreamId, Vec<StreamId>), StreamError> {
        let AutoClaim {
            start,
            min_idle_ms,
            count,
            just_id,
        } = scan;
        let group_ref = self.groups.get(group).ok_or(StreamError::NoGroup)?;
        let mut attempts = count.saturating_mul(10);
        let mut left = count;
        let mut visit: Vec<(StreamId, bool)> = Vec::new();
        let mut scan = group_ref.pel.range(start..).peekable();
        let mut next = StreamId::MIN;
        while attempts > 0 && left > 0 {
            let Some((&id, nack)) = scan.next() else {
                break;
            };
            attempts -= 1;
            if self.get(id).is_none() {
                visit.push((id, false));
                left -= 1;
                continue;
            }
            if min_idle_ms > 0 && now_ms.saturating_sub(nack.delivery_time) < min_idle_ms {
                continue;
            }
            visit.push((id, true));
            left -= 1;
        }
        if let Some((&id, _)) = scan.next() {
            next = id;
        }
        let group = self.group_mut(group)?;
        let mut owner: Option<Arc<[u8]>> = None;
        let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
        for (id, present) in visit {
            if !present {
                group.unpend(id);
                deleted.push(id);
                continue;
            }
            let owner = owner
                .get_or_insert_with(|| group.consumer(consumer, now_ms))
                .clone();
            let old = group.pel.get(&id).map_or(1, |n| n.delivery_count);
            let count = if just_id { old } else { old + 1 };
            group.assign(id, &owner, now_ms, count);
            claimed.push(id);
        }
        Ok((claimed, next, deleted))
    }

    /// Restores a group from a snapshot.
    pub fn restore_group(
        &mut self,
        name: &[u8],
        last_id: StreamId,
        entries_read: Option<u64>,
        consumers: Vec<(Vec<u8>, u64)>,
        pending: Vec<(StreamId, Vec<u8>, u64, u64)>,
    ) {
        let mut group = Group {
            last_id,
            entries_read,
            ..Group::default()
        };
        for (name, seen) in consumers {
            group.consumer(&name, seen);
        }
        for (id, owner, time, count) in pending {
            let owner = match group.consumers.get_key_value(&owner[..]) {
                Some((key, _)) => key.clone(),
                None => group.consumer(&owner, 0),
            };
            group.assign(id, &owner, time, count);
        }
        self.groups.insert(name.into(), group);
    }
}
