//! ACL rules on the memcached port: one memcached login (SASL on binary, the authenticating
//! `set` on text) and whether it may run a command on its keys.
//!
//! A memcached command counts as its RESP twin for the ACL (`get`, `getex`, `set`, `del`,
//! `incrby`, `expire`, `flushall`, `info`, `config`, `shutdown`, `save`, `bgsave`, `object`),
//! so one rule set (`+@read ~app1:*`) means the same on both ports. Users of the password file
//! may run everything, as before ACLs. This module only decides: the dialects word the refusal.

use crate::acl::{Access, SharedAcl};
use crate::auth::{Credentials, Users};

/// Who a memcached connection logged in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub name: Vec<u8>,
    /// Logged in as an ACL user (else a password-file user): a user deleted or switched off
    /// since is refused everything.
    pub acl_user: bool,
}

/// The password file's users, and the ACL users with a password (a `nopass` user would let
/// any password in, which a login must not).
pub struct AnyUser<'a> {
    pub file: &'a Users,
    pub acl: &'a SharedAcl,
}

impl AnyUser<'_> {
    /// The login `name`/`password` make, if they match: a password-file user first.
    pub fn login(&self, name: &[u8], password: &[u8]) -> Option<Login> {
        if self.file.verify(name, password) {
            return Some(Login {
                name: name.to_vec(),
                acl_user: false,
            });
        }
        self.acl_verify(name, password).then(|| Login {
            name: name.to_vec(),
            acl_user: true,
        })
    }

    fn acl_verify(&self, name: &[u8], password: &[u8]) -> bool {
        self.acl
            .user(&String::from_utf8_lossy(name))
            .is_some_and(|user| user.enabled && !user.nopass && user.password_ok(password))
    }
}

impl Credentials for AnyUser<'_> {
    fn verify(&self, name: &[u8], password: &[u8]) -> bool {
        self.file.verify(name, password) || self.acl_verify(name, password)
    }
}

/// Whether `user` (a login name; empty = no login) may not run the RESP twin `command` on
/// `keys` with `access`. A name that is no ACL user is a password-file user, who may run
/// everything unless `acl_user` says the login was an ACL user's (since deleted).
pub fn denies<'k>(
    acl: &SharedAcl,
    user: &[u8],
    acl_user: bool,
    command: &str,
    keys: impl IntoIterator<Item = &'k [u8]>,
    access: Access,
) -> bool {
    if user.is_empty() {
        return false;
    }
    let Some(found) = acl.user(&String::from_utf8_lossy(user)) else {
        return acl_user;
    };
    if !found.enabled && acl_user {
        return true;
    }
    if found.unrestricted() {
        return false;
    }
    let may_run = acl
        .read()
        .catalogue
        .find(command)
        .is_some_and(|index| found.may_run(index));
    !may_run
        || keys
            .into_iter()
            .any(|key| !found.may_access_key(key, access))
}
