//! Validated identifiers: room names, user ids and session ids.
//!
//! They are reference-counted strings because the core copies them into many events;
//! a clone is a counter increment, never an allocation.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most characters a user id or session id may have.
pub const MAX_ID_CHARS: usize = 128;
/// The most characters a user's display name may have.
pub const MAX_NAME_CHARS: usize = 128;
/// The most characters a room name may have (the contract's limit).
pub const MAX_ROOM_CHARS: usize = 128;

/// Why a string was refused as a name or id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    /// The room name is empty, too long or uses a character outside `A-Z a-z 0-9 . _ - : /`.
    #[error("room must be 1 to 128 characters of A-Z a-z 0-9 . _ - : /")]
    Room,
    /// The id is empty or longer than [`MAX_ID_CHARS`].
    #[error("{0} must be a string of 1 to 128 characters")]
    Id(&'static str),
}

macro_rules! shared_str {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// A server-made identifier: a short `prefix` and 16 hex digits of `n`.
            pub fn generated(prefix: &'static str, n: u64) -> Self {
                debug_assert!(prefix.len() <= 32);
                Self(Arc::from(format!("{prefix}{n:016x}")))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $name::new(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

shared_str!(
    /// A room's name: 1 to 128 characters of `A-Z a-z 0-9 . _ - : /`.
    RoomName
);
shared_str!(
    /// A user's id: 1 to 128 characters. All of one user's sessions share it.
    UserId
);
shared_str!(
    /// Names one tab's or device's session in one room: 1 to 128 characters.
    SessionId
);

impl RoomName {
    /// The room a message without `room` addresses, so room-less clients work unchanged.
    pub const DEFAULT: &'static str = "default";

    /// Checks `name` against the contract's alphabet and length.
    pub fn new(name: &str) -> Result<Self, InvalidName> {
        let valid_char =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/');
        if name.is_empty() || name.len() > MAX_ROOM_CHARS || !name.chars().all(valid_char) {
            return Err(InvalidName::Room);
        }
        Ok(Self(Arc::from(name)))
    }

    /// The room `"default"`.
    pub fn default_room() -> Self {
        Self(Arc::from(Self::DEFAULT))
    }
}

impl UserId {
    /// Accepts any 1 to 128 characters.
    pub fn new(id: &str) -> Result<Self, InvalidName> {
        check_id(id, "user.id").map(|()| Self(Arc::from(id)))
    }
}

impl SessionId {
    /// Accepts any 1 to 128 characters.
    pub fn new(id: &str) -> Result<Self, InvalidName> {
        check_id(id, "user.sessionId").map(|()| Self(Arc::from(id)))
    }
}

fn check_id(id: &str, what: &'static str) -> Result<(), InvalidName> {
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_ID_CHARS {
        return Err(InvalidName::Id(what));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_follow_the_contract() {
        assert!(RoomName::new("default").is_ok());
        assert!(RoomName::new("org:acme/doc-1.v2_a").is_ok());
        assert!(RoomName::new(&"a".repeat(128)).is_ok());
        assert_eq!(RoomName::new(&"a".repeat(129)), Err(InvalidName::Room));
        assert_eq!(RoomName::new(""), Err(InvalidName::Room));
        assert_eq!(RoomName::new("has space"), Err(InvalidName::Room));
        assert_eq!(RoomName::new("é"), Err(InvalidName::Room));
    }

    #[test]
    fn ids_are_bounded_in_characters() {
        assert!(UserId::new(&"é".repeat(128)).is_ok());
        assert!(UserId::new(&"é".repeat(129)).is_err());
        assert!(SessionId::new("").is_err());
    }
}
