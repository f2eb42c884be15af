//! What the command layer tells the layers below it about itself: the commands and ACL
//! categories ACL rules may name, and the commands that get latency tables. Handed to
//! `Shared::new` by whoever builds the shared state, so nothing below imports the commands.
//!
//! Lists only; runs no command.

/// What the shared state must know of the commands (`Shared::new`).
pub fn catalogue() -> crate::shared::CommandCatalogue {
    crate::shared::CommandCatalogue {
        acl: super::resp::table::acl_catalogue(),
        timed: timed_commands(),
        redis_version: super::compat::REDIS_VERSION,
    }
}

/// Every command that gets a latency table, by protocol.
pub fn timed_commands() -> Vec<crate::metrics::latency::CommandKey> {
    use crate::metrics::latency::Proto;
    let named =
        |proto: Proto, names: &'static [&'static str]| names.iter().map(move |name| (proto, *name));
    named(Proto::Memcache, super::memcache::COMMAND_NAMES)
        .chain(named(Proto::Binary, super::binary::OPCODE_NAMES))
        .chain(named(Proto::Http, super::http::ROUTE_NAMES))
        .chain(
            super::resp::table::COMMANDS
                .iter()
                .map(|spec| (Proto::Resp, spec.name)),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::metrics::latency::{Proto, Registry};

    /// Every memcached command finds its latency slot by its place, without hashing its
    /// name: the registry keeps the very `&'static str`s of `COMMAND_NAMES`.
    #[test]
    fn memcached_commands_find_their_slot_by_place() {
        let registry = Registry::new(super::timed_commands());
        for (nth, name) in super::super::memcache::COMMAND_NAMES.iter().enumerate() {
            assert!(
                registry.nth(Proto::Memcache, nth, name).is_some(),
                "{name} at {nth}"
            );
        }
    }
}
