//! The client's copy of one room's roster, kept current from the server's events.

use std::collections::HashMap;

use presence_protocol::{ServerMessage, User, UserId};

/// One room's users as this client last heard them.
///
/// It starts from a `presence:currentUsers` snapshot and follows `userJoined`,
/// `userLeft`, `userUpdated`, `presence:diff` and `presence:cursors`. Every change is an
/// upsert or a removal keyed by user id, so applying an event twice, or a diff that
/// overlaps the snapshot (as docs/protocol.md allows), converges to the same roster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roster {
    users: HashMap<UserId, User>,
    /// Listed users and spectator sessions in the whole room, as the server last said.
    counts: (u64, u64),
}

impl Roster {
    /// A roster holding exactly `users` (a `presence:currentUsers` snapshot).
    pub fn from_users(users: impl IntoIterator<Item = User>) -> Self {
        let users: HashMap<UserId, User> = users
            .into_iter()
            .map(|user| (user.id.clone(), user))
            .collect();
        Roster {
            counts: (users.len() as u64, 0),
            users,
        }
    }

    /// Applies one server message addressed to this roster's room; the caller checks the
    /// room. Returns whether the message is one that changes a roster.
    ///
    /// A `presence:diff` applies `left` first, then `joined`, then `updated`, both as
    /// upserts; a `left` for an unknown id is a no-op. `presence:cursors` moves the users'
    /// cursors; `restored` and `error` change nothing (the snapshot that follows a
    /// restore does).
    pub fn apply(&mut self, message: &ServerMessage) -> bool {
        match message {
            ServerMessage::CurrentUsers {
                users,
                count,
                spectators,
                ..
            } => {
                self.users.clear();
                self.users
                    .extend(users.iter().map(|user| (user.id.clone(), user.clone())));
                self.counts = (*count, *spectators);
            }
            ServerMessage::Count {
                count, spectators, ..
            } => self.counts = (*count, *spectators),
            ServerMessage::UserJoined { user, .. } | ServerMessage::UserUpdated { user, .. } => {
                self.upsert(user);
            }
            ServerMessage::UserLeft { user_id, .. } => {
                self.users.remove(user_id);
            }
            ServerMessage::Diff {
                left,
                joined,
                updated,
                ..
            } => {
                for user_id in left {
                    self.users.remove(user_id);
                }
                for user in joined.iter().chain(updated) {
                    self.upsert(user);
                }
            }
            ServerMessage::Cursors { cursors, .. } => {
                for entry in cursors {
                    if let Some(user) = self.users.get_mut(&entry.user_id) {
                        user.cursor.x = entry.x;
                        user.cursor.y = entry.y;
                        user.cursor.visible = entry.visible;
                    }
                }
            }
            ServerMessage::Restored { .. } | ServerMessage::Error { .. } => return false,
        }
        true
    }

    fn upsert(&mut self, user: &User) {
        match self.users.get_mut(&user.id) {
            Some(held) => held.clone_from(user),
            None => {
                self.users.insert(user.id.clone(), user.clone());
            }
        }
    }

    /// Changes one user in place, if present (the client applies its own updates this way).
    pub fn edit(&mut self, id: &str, change: impl FnOnce(&mut User)) {
        if let Some(user) = self.users.get_mut(id) {
            change(user);
        }
    }

    /// The users, oldest arrival first (by `joinedAt`, then id), so snapshots are stable.
    pub fn users(&self) -> Vec<User> {
        let mut users: Vec<User> = self.users.values().cloned().collect();
        users.sort_by(|a, b| a.joined_at.cmp(&b.joined_at).then_with(|| a.id.cmp(&b.id)));
        users
    }

    /// One user, by id.
    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.get(id)
    }

    /// Whether the user is in the room.
    pub fn contains(&self, id: &str) -> bool {
        self.users.contains_key(id)
    }

    /// How many users are in the room.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// How many users the whole room lists, as the server last said: more than
    /// [`Roster::len`] with a list view.
    pub fn count(&self) -> u64 {
        self.counts.0
    }

    /// How many spectator sessions watch the room, as the server last said.
    pub fn spectators(&self) -> u64 {
        self.counts.1
    }

    /// Whether the room is empty (as far as this client knows).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use presence_protocol::{CursorEntry, CursorPosition, RoomName, SelfInfo, SessionId, State};

    use super::*;

    fn user(id: &str, joined_at: u64, name: &str) -> User {
        User {
            id: UserId::new(id).unwrap(),
            name: name.to_owned(),
            color: "#1F77B4".to_owned(),
            joined_at,
            last_seen: joined_at,
            cursor: CursorPosition::default(),
            state: State::new(),
            sessions: 1,
        }
    }

    fn room() -> RoomName {
        RoomName::new("r").unwrap()
    }

    fn ids(roster: &Roster) -> Vec<String> {
        roster.users().iter().map(|u| u.id.to_string()).collect()
    }

    fn snapshot(users: Vec<User>) -> ServerMessage {
        ServerMessage::CurrentUsers {
            room: room(),
            count: users.len() as u64,
            users,
            me: SelfInfo {
                id: UserId::new("a").unwrap(),
                session_id: SessionId::new("s").unwrap(),
            },
            spectators: 0,
        }
    }

    #[test]
    fn counts_follow_the_snapshot_and_count_frames() {
        let mut roster = Roster::default();
        roster.apply(&snapshot(vec![user("a", 1, "A")]));
        assert_eq!((roster.count(), roster.spectators()), (1, 0));
        assert!(roster.apply(&ServerMessage::Count {
            room: room(),
            count: 12_408,
            spectators: 3,
        }));
        assert_eq!(
            (roster.count(), roster.spectators(), roster.len()),
            (12_408, 3, 1)
        );
    }

    #[test]
    fn single_events_follow_the_snapshot() {
        let mut roster = Roster::default();
        assert!(roster.apply(&snapshot(vec![user("b", 2, "B"), user("a", 1, "A")])));
        assert_eq!(ids(&roster), ["a", "b"]);
        roster.apply(&ServerMessage::UserJoined {
            room: room(),
            user: user("c", 3, "C"),
        });
        roster.apply(&ServerMessage::UserLeft {
            room: room(),
            user_id: UserId::new("a").unwrap(),
        });
        roster.apply(&ServerMessage::UserUpdated {
            room: room(),
            user: user("b", 2, "Bee"),
        });
        assert_eq!(ids(&roster), ["b", "c"]);
        assert_eq!(roster.user("b").unwrap().name, "Bee");
        // A snapshot replaces everything, including users the client thought were there.
        roster.apply(&snapshot(vec![user("d", 4, "D")]));
        assert_eq!(ids(&roster), ["d"]);
    }

    #[test]
    fn a_diff_applies_left_then_joined_then_updated_as_upserts() {
        let mut roster = Roster::from_users([user("a", 1, "A"), user("b", 2, "B")]);
        roster.apply(&ServerMessage::Diff {
            room: room(),
            // "a" left and came back within the interval; "zz" was never known.
            left: vec![UserId::new("a").unwrap(), UserId::new("zz").unwrap()],
            joined: vec![
                user("a", 5, "A again"),
                user("b", 2, "B dup"),
                user("c", 3, "C"),
            ],
            updated: vec![user("c", 3, "C2"), user("d", 6, "D unknown")],
        });
        assert_eq!(ids(&roster), ["b", "c", "a", "d"]);
        assert_eq!(roster.user("a").unwrap().name, "A again");
        assert_eq!(roster.user("b").unwrap().name, "B dup");
        assert_eq!(roster.user("c").unwrap().name, "C2");
    }

    #[test]
    fn a_diff_overlapping_the_snapshot_converges() {
        let joined = user("a", 1, "A");
        let mut roster = Roster::default();
        roster.apply(&snapshot(vec![joined.clone()]));
        let diff = ServerMessage::Diff {
            room: room(),
            left: vec![],
            joined: vec![joined.clone()],
            updated: vec![],
        };
        roster.apply(&diff);
        roster.apply(&diff);
        assert_eq!(roster, Roster::from_users([joined]));
    }

    #[test]
    fn cursors_move_known_users_only() {
        let mut roster = Roster::from_users([user("a", 1, "A")]);
        roster.apply(&ServerMessage::Cursors {
            room: room(),
            cursors: vec![
                CursorEntry {
                    user_id: UserId::new("a").unwrap(),
                    x: 0.5,
                    y: 0.25,
                    visible: true,
                },
                CursorEntry {
                    user_id: UserId::new("x").unwrap(),
                    x: 1.0,
                    y: 1.0,
                    visible: true,
                },
            ],
        });
        assert_eq!(
            roster.user("a").unwrap().cursor,
            CursorPosition {
                x: 0.5,
                y: 0.25,
                visible: true
            }
        );
        assert_eq!(roster.len(), 1);
    }

    #[test]
    fn restored_and_errors_leave_the_roster_alone() {
        let mut roster = Roster::from_users([user("a", 1, "A")]);
        let before = roster.clone();
        assert!(!roster.apply(&ServerMessage::Restored {
            room: room(),
            user: user("a", 9, "changed"),
            session_id: SessionId::new("s").unwrap(),
        }));
        assert_eq!(roster, before);
    }
}
