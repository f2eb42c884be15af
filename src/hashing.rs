//! The hash builders behind every in-memory map, set and index of the server.
//!
//! In the server they are seeded at random, per map: [`IndexHasher`] (hashbrown's default,
//! foldhash) for the store's key index, hash and sorted-set members and pub/sub shards, and
//! [`HashMap`] / [`HashSet`] (std's SipHash `RandomState`) for the small maps, so clients
//! cannot choose keys that collide.
//!
//! Built for fuzzing (`--cfg fuzzing`, which `cargo fuzz` sets on every crate), both are
//! SipHash with fixed keys instead, so one input takes the same paths in every process and
//! every run. libFuzzer assumes a deterministic target: with random seeds, probe sequences,
//! tombstones and rehashes (and the coverage they give) changed from run to run, and the
//! `connection` target kept "finding" edges it had already seen (fuzzing round 10, commit
//! `65d091cbd`).
//!
//! Invariant: the server's code (this crate, tests aside) builds its maps and sets from this
//! module's types, never from `std::collections`' or hashbrown's default hashers directly.

/// Hash builder for the hashbrown tables that hash their keys themselves.
#[cfg(not(fuzzing))]
pub type IndexHasher = hashbrown::DefaultHashBuilder;
/// Hash builder for the hashbrown tables that hash their keys themselves (fixed keys: fuzzing).
#[cfg(fuzzing)]
pub type IndexHasher = FixedSipHash;

/// Hash builder for [`HashMap`] and [`HashSet`].
#[cfg(not(fuzzing))]
pub type MapHasher = std::collections::hash_map::RandomState;
/// Hash builder for [`HashMap`] and [`HashSet`] (fixed keys: fuzzing).
#[cfg(fuzzing)]
pub type MapHasher = FixedSipHash;

/// SipHash with the zero keys: the same hashes in every process.
#[cfg(fuzzing)]
pub type FixedSipHash = std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

/// std's `HashMap` with [`MapHasher`]; make one with `HashMap::default()`.
pub type HashMap<K, V> = std::collections::HashMap<K, V, MapHasher>;

/// std's `HashSet` with [`MapHasher`]; make one with `HashSet::default()`.
pub type HashSet<T> = std::collections::HashSet<T, MapHasher>;
