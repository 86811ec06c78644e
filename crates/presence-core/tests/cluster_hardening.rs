//! What a node does with facts that are wrong or
//! hostile. Remote colors obey the palette rule, and a `Leaving` for a node that is in fact
//! alive (forged, or a stale replay) erases nobody: the nodes read its records again, as
//! they do for a node presumed dead that speaks again.

mod support;

use std::time::Duration;

use presence_core::testing::{node_id, room, secs, state, user_id, Harness};
use presence_core::{color_for, ConnId, Fact, Input, NodeId, SessionRecord, Stamp, PALETTE};
use presence_protocol::{CursorPosition, ServerMessage, SessionId, User};
use support::{announce_alive, Bus};

const TTL: Duration = Duration::from_secs(5);
const GRACE: Duration = Duration::from_secs(10);

/// Nodes on one backend, which writes and reads records as the server's does.
struct Channel {
    nodes: Vec<Harness>,
    bus: Bus,
}

impl Channel {
    fn new(count: usize) -> Self {
        Channel {
            nodes: (0..count)
                .map(|i| Harness::cluster_node(i, TTL, GRACE))
                .collect(),
            bus: Bus::default(),
        }
    }

    /// Hands `fact` to the nodes in `to` only, as if the others had not heard it.
    fn deliver_to(&mut self, fact: &Fact, to: &[usize]) {
        for &i in to {
            self.nodes[i].input(Input::Remote(fact.clone()));
        }
    }

    /// Answers the reads of rooms asked for so far, and delivers nothing yet: the nodes
    /// start serving their rooms before any hears of the others.
    fn read_records(&mut self) {
        self.bus.collect(&mut self.nodes, |_| true);
        self.bus.answer_reads(&mut self.nodes, |_| true);
    }

    /// Carries out everything asked of the backend until nothing new is asked.
    fn pump(&mut self) {
        self.bus.pump(&mut self.nodes, |_| true, |_| true);
    }

    /// Every node says it is alive (the server's beat), then time moves on in beats.
    fn advance(&mut self, by: Duration) {
        let step = TTL / 3;
        let mut left = by;
        while left > Duration::ZERO {
            let hop = left.min(step);
            for node in &mut self.nodes {
                node.advance(hop);
            }
            announce_alive(&mut self.nodes, |_| true);
            self.pump();
            left -= hop;
        }
    }

    /// Each user of the room with its color, by user id.
    fn colors(&self, i: usize, room_name: &str) -> Vec<(String, String)> {
        let mut colors: Vec<_> = self.nodes[i]
            .tracker
            .roster(room_name)
            .unwrap_or_default()
            .into_iter()
            .map(|u| (u.id.to_string(), u.color))
            .collect();
        colors.sort();
        colors
    }
}

/// What a node would announce for `user` joining `doc` at `unix_ms` with `color`.
fn record(user: &str, color: &str, unix_ms: u64, node: NodeId) -> SessionRecord {
    let stamp = Stamp {
        unix_ms,
        node: node.0,
    };
    SessionRecord {
        room: room("doc"),
        session_id: SessionId::new(&format!("{user}-tab")).expect("session id"),
        user: User {
            id: user_id(user),
            name: user.to_owned(),
            color: color.to_owned(),
            joined_at: unix_ms,
            last_seen: unix_ms,
            cursor: CursorPosition::default(),
            state: state("{}"),
            sessions: 1,
        },
        away: false,
        stamp,
        claim: stamp,
        spectator: false,
    }
}

fn is_palette(color: &str) -> bool {
    PALETTE.contains(&color)
}

/// A user id other than `user` that prefers the same palette color.
fn same_preference_as(user: &str) -> String {
    (0..)
        .map(|n| format!("user-{n}"))
        .find(|other| color_for(other) == color_for(user))
        .expect("some id shares the preference")
}

#[test]
fn a_remote_color_off_the_palette_is_listed_as_a_palette_color() {
    let mut c = Channel::new(1);
    let alice = c.nodes[0].join("doc", "alice");
    c.read_records();
    c.nodes[0].take(alice);
    let stranger = node_id(7);
    // #FFFF00 has a contrast of 1.07:1 against white: white initials on it are unreadable.
    let fact = Fact::Session {
        node: stranger,
        record: record("mallory", "#FFFF00", 1_700_000_000_000, stranger),
    };
    c.deliver_to(&fact, &[0]);

    let colors = c.colors(0, "doc");
    assert!(
        colors.iter().all(|(_, color)| is_palette(color)),
        "{colors:?}"
    );
    assert_ne!(
        colors[0].1, colors[1].1,
        "distinct while the palette allows"
    );
    let frames = c.nodes[0].take(alice);
    let [ServerMessage::UserJoined { user, .. }] = frames.as_slice() else {
        panic!("{frames:?}")
    };
    assert!(is_palette(&user.color), "alice was told {}", user.color);

    // A later change of the same user cannot smuggle the color in either.
    let mut changed = record("mallory", "#FFFF01", 1_700_000_000_500, stranger);
    changed.user.name = "Mallory".to_owned();
    c.deliver_to(
        &Fact::Session {
            node: stranger,
            record: changed,
        },
        &[0],
    );
    let colors = c.colors(0, "doc");
    assert!(
        colors.iter().all(|(_, color)| is_palette(color)),
        "{colors:?}"
    );
}

#[test]
fn two_users_colored_at_once_on_two_nodes_end_with_distinct_colors_everywhere() {
    let mut c = Channel::new(2);
    c.advance(TTL / 3);
    let twin = same_preference_as("alice");
    // Both join before either node hears of the other: both get the preferred color.
    let alice = c.nodes[0].join("doc", "alice");
    let other = c.nodes[1].join("doc", &twin);
    c.read_records();
    assert_eq!(
        c.nodes[0].user("doc", "alice").map(|u| u.color),
        c.nodes[1].user("doc", &twin).map(|u| u.color)
    );
    c.pump();

    let (on_0, on_1) = (c.colors(0, "doc"), c.colors(1, "doc"));
    assert_eq!(on_0, on_1, "every node shows the same colors");
    assert_ne!(on_0[0].1, on_0[1].1, "{on_0:?}: one color for two users");
    assert!(on_0.iter().all(|(_, color)| is_palette(color)));
    // The earlier arrival (here the smaller id, both joined in the same millisecond)
    // keeps its color; the other one's own node moved it and said so.
    assert_eq!(
        on_0[0],
        ("alice".to_owned(), PALETTE[color_for("alice")].to_owned())
    );
    let told = c.nodes[0].take(alice);
    assert!(
        told.iter().any(|m| matches!(m, ServerMessage::UserUpdated { user, .. } if user.id.as_str() == twin && user.color == on_0[1].1)),
        "{told:?}"
    );
    let told = c.nodes[1].take(other);
    assert!(
        told.iter().any(|m| matches!(m, ServerMessage::UserUpdated { user, .. } if user.id.as_str() == twin && user.color == on_0[1].1)),
        "{twin} learns its own new color: {told:?}"
    );
}

/// Two nodes that have heard each other: alice joined on node 0, bob on node 1, and bob's
/// frames so far read.
fn alice_on_0_bob_on_1() -> (Channel, ConnId, ConnId) {
    let mut c = Channel::new(2);
    c.advance(TTL / 3);
    let alice = c.nodes[0].join("doc", "alice");
    c.pump();
    let bob = c.nodes[1].join("doc", "bob");
    c.pump();
    c.nodes[1].take(bob);
    (c, alice, bob)
}

#[test]
fn a_leaving_for_a_node_that_speaks_again_is_healed_from_its_records() {
    let (mut c, _alice, bob) = alice_on_0_bob_on_1();

    // A forged (or replayed) `Leaving` for node 0 reaches node 1 only.
    c.deliver_to(&Fact::Leaving { node: node_id(0) }, &[1]);
    // Node 0 keeps beating: node 1 hears a node that said it left, and reads its records.
    c.advance(TTL / 3);
    c.advance(GRACE + TTL);
    assert_eq!(
        c.nodes[1].roster("doc"),
        ["alice", "bob"],
        "alice never left"
    );
    assert!(c.nodes[1].take(bob).is_empty(), "bob saw no leave");
}

#[test]
fn a_node_that_hears_a_leaving_in_its_own_name_has_its_records_read_again() {
    let (mut c, _alice, bob) = alice_on_0_bob_on_1();

    let forged = Fact::Leaving { node: node_id(0) };
    c.deliver_to(&forged, &[0]);
    assert_eq!(
        c.nodes[0].published(),
        [Fact::Reasserted { node: node_id(0) }],
        "node 0 is alive and says so at once"
    );
    c.nodes[0].backend.clear();

    // On the real channel everyone hears it: node 0's word has node 1 read its records,
    // which revives alice before any beat, and nothing erases her afterwards.
    c.deliver_to(&forged, &[0, 1]);
    c.pump();
    c.advance(GRACE + TTL);
    assert_eq!(c.nodes[1].roster("doc"), ["alice", "bob"]);
    assert!(c.nodes[1].take(bob).is_empty(), "bob saw no leave");
}

#[test]
fn a_node_that_really_left_still_has_its_users_leave_after_the_grace() {
    let (mut c, alice, bob) = alice_on_0_bob_on_1();

    // A real drain: node 0 announces it leaves, closes its sockets and says nothing more
    // (the server publishes nothing after its own `Leaving`).
    c.deliver_to(&Fact::Leaving { node: node_id(0) }, &[1]);
    c.nodes[0].close(alice);
    c.nodes[0].backend.clear();
    let survivor = c.nodes.remove(1);
    c.nodes = vec![survivor];
    c.nodes[0].advance(GRACE + secs(1));
    assert_eq!(c.nodes[0].roster("doc"), ["bob"]);
    assert_eq!(c.nodes[0].kinds(bob), ["presence:userLeft"]);
}

#[test]
fn many_users_colored_at_once_on_three_nodes_settle_on_distinct_shared_colors() {
    let mut c = Channel::new(3);
    c.advance(TTL / 3);
    // Four rounds of three simultaneous joins, one per node, by users who all prefer the
    // same color, each round heard by all only after it: twelve users, sixteen colors,
    // so nobody need share one.
    for round in 0..4 {
        let trio: Vec<String> = (0..)
            .map(|n| format!("r{round}-{n}"))
            .filter(|id| color_for(id) == round)
            .take(3)
            .collect();
        for (i, id) in trio.iter().enumerate() {
            c.nodes[i].join("doc", id);
        }
        c.pump();
    }
    let on_0 = c.colors(0, "doc");
    assert_eq!(on_0.len(), 12);
    assert_eq!(on_0, c.colors(1, "doc"));
    assert_eq!(on_0, c.colors(2, "doc"));
    let mut distinct: Vec<&String> = on_0.iter().map(|(_, color)| color).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 12, "{on_0:?}");
}
