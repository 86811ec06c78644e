//! Several trackers as nodes of one cluster, their facts carried by a test backend that
//! behaves as the server's Redis does (room channels followed by interest, records per
//! node): cross-node rosters, node death, restore elsewhere, drain, lost facts healed by
//! reading records again, a backend that loses everything, and nodes that only serve the
//! rooms they hold sessions in.

mod support;

use std::time::Duration;

use presence_core::testing::{ms, node_id, room, secs, BackendCall, Harness, JoinSpec};
use presence_core::{Fact, Input};
use presence_protocol::ServerMessage;
use support::{announce_alive, Bus};

const TTL: Duration = Duration::from_secs(5);
const GRACE: Duration = Duration::from_secs(10);

struct Nodes {
    nodes: Vec<Harness>,
    /// Nodes whose facts and writes are lost (killed, or cut off).
    muted: Vec<bool>,
    /// Nodes that hear nothing (their subscription is lost).
    deaf: Vec<bool>,
    bus: Bus,
}

impl Nodes {
    fn new(count: usize) -> Self {
        let nodes = (0..count)
            .map(|i| Harness::cluster_node(i, TTL, GRACE))
            .collect();
        Nodes {
            nodes,
            muted: vec![false; count],
            deaf: vec![false; count],
            bus: Bus::default(),
        }
    }

    /// Carries out everything asked of the backend, until nothing new is asked.
    fn pump(&mut self) {
        let (muted, deaf) = (&self.muted, &self.deaf);
        self.bus.pump(&mut self.nodes, |i| !muted[i], |i| !deaf[i]);
    }

    /// Every unmuted node says it is alive (the server's beat does this every ttl/3).
    fn beat(&mut self) {
        let muted = &self.muted;
        announce_alive(&mut self.nodes, |i| !muted[i]);
        self.pump();
    }

    /// Advances every node's clock in beats of a third of the TTL.
    fn advance(&mut self, by: Duration) {
        let step = TTL / 3;
        let mut left = by;
        while left > Duration::ZERO {
            let hop = left.min(step);
            for node in &mut self.nodes {
                node.advance(hop);
            }
            self.pump();
            self.beat();
            left -= hop;
        }
    }

    /// Node `i` is killed: it says nothing more, and its liveness key expires a node TTL
    /// later, its records a grace after that.
    fn kill(&mut self, i: usize) {
        self.muted[i] = true;
        self.bus.silence(i, GRACE);
    }
}

fn ids(users: &[presence_protocol::User]) -> Vec<&str> {
    users.iter().map(|u| u.id.as_str()).collect()
}

#[test]
fn users_on_different_nodes_share_one_roster() {
    let mut c = Nodes::new(3);
    c.beat();
    let alice = c.nodes[0].join("doc", "alice");
    c.pump();
    let bob = c.nodes[1].join("doc", "bob");
    c.pump();
    let carol = c.nodes[2].join("doc", "carol");
    c.pump();

    let frames = c.nodes[2].take(carol);
    let [ServerMessage::CurrentUsers { users, .. }] = frames.as_slice() else {
        panic!("{frames:?}")
    };
    assert_eq!(ids(users), ["alice", "bob", "carol"]);
    assert_eq!(
        c.nodes[0].kinds(alice),
        [
            "presence:currentUsers",
            "presence:userJoined",
            "presence:userJoined"
        ]
    );
    assert_eq!(
        c.nodes[1].kinds(bob),
        ["presence:currentUsers", "presence:userJoined"]
    );
    // Every node shows the same colors.
    let colors: Vec<Vec<String>> = c
        .nodes
        .iter()
        .map(|n| {
            n.tracker
                .roster("doc")
                .unwrap_or_default()
                .into_iter()
                .map(|u| u.color)
                .collect()
        })
        .collect();
    assert!(colors.windows(2).all(|w| w[0] == w[1]), "{colors:?}");
}

#[test]
fn updates_cursors_and_leaves_cross_nodes() {
    let mut c = Nodes::new(2);
    c.beat();
    let alice = c.nodes[0].join("doc", "alice");
    c.pump();
    let bob = c.nodes[1].join("doc", "bob");
    c.pump();
    c.nodes[0].take(alice);
    c.nodes[1].take(bob);

    c.nodes[0].update(alice, "doc", r#"{"tool":"pen"}"#);
    c.pump();
    let frames = c.nodes[1].take(bob);
    assert!(
        matches!(&frames[..], [ServerMessage::UserUpdated { user, .. }] if user.state["tool"] == "pen")
    );

    // Many moves in one interval: one Cursors fact per room per interval from node 0.
    c.nodes[0].cursor(alice, "doc", 0.1, 0.1);
    c.nodes[0].cursor(alice, "doc", 0.2, 0.2);
    c.nodes[0].advance(ms(10));
    c.nodes[0].cursor(alice, "doc", 0.3, 0.3);
    c.nodes[0].advance(ms(50));
    let cursor_facts = c.nodes[0]
        .published()
        .iter()
        .filter(|f| matches!(f, Fact::Cursors { .. }))
        .count();
    assert_eq!(
        cursor_facts, 2,
        "the immediate first frame, then one for the interval"
    );
    c.pump();
    c.nodes[1].advance(ms(50));
    let frames = c.nodes[1].take(bob);
    let last = frames.iter().rev().find_map(|f| match f {
        ServerMessage::Cursors { cursors, .. } => Some(cursors.clone()),
        _ => None,
    });
    assert_eq!(
        last.map(|c| (c[0].user_id.to_string(), c[0].x)),
        Some(("alice".to_owned(), 0.3))
    );

    c.nodes[0].leave(alice, None);
    c.pump();
    assert_eq!(c.nodes[1].kinds(bob), ["presence:userLeft"]);
    assert_eq!(c.nodes[1].roster("doc"), ["bob"]);
}

#[test]
fn a_killed_nodes_users_leave_within_ttl_plus_grace() {
    let mut c = Nodes::new(2);
    c.beat();
    let _alice = c.nodes[0].join("doc", "alice");
    c.pump();
    let bob = c.nodes[1].join("doc", "bob");
    c.pump();
    c.nodes[1].take(bob);

    c.kill(0); // SIGKILL: node 0 says nothing more
    c.advance(TTL + GRACE - secs(2));
    assert_eq!(
        c.nodes[1].roster("doc"),
        ["alice", "bob"],
        "still within ttl + grace"
    );
    assert!(c.nodes[1].take(bob).is_empty());
    c.advance(secs(4));
    assert_eq!(c.nodes[1].roster("doc"), ["bob"]);
    assert_eq!(c.nodes[1].kinds(bob), ["presence:userLeft"]);
}

#[test]
fn a_session_restores_on_another_node_without_a_leave_or_join() {
    let mut c = Nodes::new(3);
    c.beat();
    let alice = c.nodes[0].connect();
    let spec = JoinSpec {
        session_id: Some("tab-1".into()),
        ..JoinSpec::default()
    };
    c.nodes[0].join_on(alice, "doc", "alice", spec.clone());
    c.nodes[0].update(alice, "doc", r#"{"tool":"pen"}"#);
    c.pump();
    let bob = c.nodes[1].join("doc", "bob");
    c.pump();
    c.nodes[1].take(bob);
    let before = c.nodes[1]
        .user("doc", "alice")
        .expect("alice listed on node 1");

    c.kill(0);
    c.advance(TTL + secs(2)); // declared dead; alice's grace runs everywhere
    assert!(
        c.nodes[2].roster("doc").is_empty(),
        "node 2 serves no one in doc, so it holds nothing of it"
    );
    // Node 2 starts serving doc: it reads the records, node 0's among them, as orphans.
    let again = c.nodes[2].connect();
    c.nodes[2].join_on(again, "doc", "alice", spec);
    c.pump();
    let frames = c.nodes[2].take(again);
    let [ServerMessage::Restored { user, .. }, ServerMessage::CurrentUsers { users, .. }] =
        frames.as_slice()
    else {
        panic!("{frames:?}")
    };
    assert_eq!(
        (&user.color, user.joined_at, &user.state),
        (&before.color, before.joined_at, &before.state)
    );
    assert_eq!(ids(users), ["alice", "bob"]);

    c.advance(GRACE + secs(5));
    assert_eq!(
        c.nodes[1].roster("doc"),
        ["alice", "bob"],
        "claimed, so the grace did not end it"
    );
    assert!(
        c.nodes[1].take(bob).is_empty(),
        "bob saw no leave and no join"
    );
}

#[test]
fn a_draining_node_hands_its_sessions_over_silently() {
    let mut c = Nodes::new(2);
    c.beat();
    let alice = c.nodes[0].connect();
    let spec = JoinSpec {
        session_id: Some("tab-1".into()),
        ..JoinSpec::default()
    };
    c.nodes[0].join_on(alice, "doc", "alice", spec.clone());
    c.pump();
    let bob = c.nodes[1].join("doc", "bob");
    c.pump();
    c.nodes[1].take(bob);

    // SIGTERM on node 0: it announces it leaves, closes its sockets (no leave), and exits.
    c.nodes[0]
        .backend
        .push(BackendCall::Publish(Fact::Leaving { node: node_id(0) }));
    c.nodes[0].close(alice);
    c.pump();
    c.muted[0] = true;
    let again = c.nodes[1].connect();
    c.nodes[1].join_on(again, "doc", "alice", spec);
    assert_eq!(
        c.nodes[1].kinds(again),
        ["presence:restored", "presence:currentUsers"]
    );
    c.advance(GRACE + TTL);
    assert_eq!(c.nodes[1].roster("doc"), ["alice", "bob"]);
    assert!(c.nodes[1].take(bob).is_empty());
}

#[test]
fn records_read_again_heal_facts_lost_in_an_outage() {
    let mut c = Nodes::new(2);
    c.beat();
    let alice = c.nodes[0].join("doc", "alice");
    let _carol = c.nodes[0].join("doc", "carol");
    c.pump();
    let bob = c.nodes[1].join("doc", "bob");
    c.pump();
    c.nodes[1].take(bob);

    // Node 1 loses its subscription; meanwhile alice leaves and dave arrives on node 0.
    c.nodes[1].input(Input::BackendDown);
    c.deaf[1] = true;
    c.nodes[0].leave(alice, None);
    let _dave = c.nodes[0].join("doc", "dave");
    c.pump();
    c.advance(TTL * 3); // silence during an outage proves nothing: no orphaning
    assert_eq!(c.nodes[1].roster("doc"), ["alice", "bob", "carol"]);

    // Back: node 1 reads the room again at once, trusting no absence yet (a restarted
    // Redis may not hold everyone's records again yet), then again a node TTL later.
    c.deaf[1] = false;
    c.nodes[1].input(Input::BackendUp);
    c.pump();
    assert_eq!(c.nodes[1].roster("doc"), ["alice", "bob", "carol", "dave"]);
    assert_eq!(c.nodes[1].kinds(bob), ["presence:userJoined"]);
    c.advance(TTL);
    assert_eq!(c.nodes[1].roster("doc"), ["bob", "carol", "dave"]);
    assert_eq!(c.nodes[1].kinds(bob), ["presence:userLeft"]);
}

#[test]
fn a_backend_that_loses_every_record_shows_nobody_a_leave() {
    let mut c = Nodes::new(3);
    c.beat();
    let alice = c.nodes[0].join("doc", "alice");
    c.pump();
    let bob = c.nodes[1].join("doc", "bob");
    c.pump();
    let carol = c.nodes[2].join("doc", "carol");
    c.pump();
    for (i, conn) in [(0, alice), (1, bob), (2, carol)] {
        c.nodes[i].take(conn);
    }

    // Redis restarts empty. Every node loses its subscription, comes back, and writes its
    // records again, one after another.
    c.bus.wipe();
    for i in 0..3 {
        c.nodes[i].input(Input::BackendDown);
    }
    for i in 0..3 {
        c.nodes[i].input(Input::BackendUp);
        c.pump();
        c.bus.reassert(&c.nodes, i);
        c.pump();
    }
    c.advance(TTL * 2);
    for (i, conn) in [(0, alice), (1, bob), (2, carol)] {
        assert_eq!(
            c.nodes[i].roster("doc"),
            ["alice", "bob", "carol"],
            "node {i}"
        );
        assert!(
            c.nodes[i].take(conn).is_empty(),
            "node {i}'s client saw a change"
        );
    }
    // And a node that starts serving doc now reads the whole roster.
    let dave = c.nodes[1].join("lobby", "dave");
    c.nodes[1].join_on(dave, "doc", "dave", JoinSpec::default());
    c.pump();
    let frames = c.nodes[1].take(dave);
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerMessage::CurrentUsers { users, .. } if users.len() == 4)),
        "{frames:?}"
    );
}

#[test]
fn concurrent_changes_from_two_nodes_converge() {
    let mut c = Nodes::new(2);
    c.beat();
    let tab1 = c.nodes[0].join("doc", "alice");
    c.pump();
    let tab2 = c.nodes[1].join("doc", "alice");
    c.pump();
    assert_eq!(c.nodes[0].user("doc", "alice").map(|u| u.sessions), Some(2));
    // Both tabs change the same key before hearing of each other.
    c.nodes[0].advance(ms(5));
    c.nodes[1].advance(ms(5));
    c.nodes[0].update(tab1, "doc", r#"{"color":"red"}"#);
    c.nodes[1].update(tab2, "doc", r#"{"color":"blue"}"#);
    c.pump();
    let a = c.nodes[0].user("doc", "alice").map(|u| u.state);
    let b = c.nodes[1].user("doc", "alice").map(|u| u.state);
    assert_eq!(a, b, "both nodes settle on the same winner");
}

#[test]
fn a_node_presumed_dead_that_speaks_again_is_revived_from_its_records() {
    let mut c = Nodes::new(2);
    c.beat();
    let _alice = c.nodes[0].join("doc", "alice");
    c.pump();
    let bob = c.nodes[1].join("doc", "bob");
    c.pump();
    c.nodes[1].take(bob);

    c.muted[0] = true; // a long pause: node 0 is silent past the TTL
    c.advance(TTL + secs(1));
    c.muted[0] = false;
    c.beat();
    // Hearing a node presumed dead makes node 1 read its records: alice is no orphan.
    c.advance(GRACE + secs(1));
    assert_eq!(
        c.nodes[1].roster("doc"),
        ["alice", "bob"],
        "alice never left"
    );
    assert!(c.nodes[1].take(bob).is_empty());
}

#[test]
fn when_two_nodes_both_claim_a_session_the_later_claim_owns_it_everywhere() {
    let mut c = Nodes::new(2);
    c.beat();
    let spec = JoinSpec {
        session_id: Some("tab-1".into()),
        ..JoinSpec::default()
    };
    let old = c.nodes[0].connect();
    c.nodes[0].join_on(old, "doc", "alice", spec.clone());
    c.pump();
    let bob = c.nodes[1].join("doc", "bob");
    c.pump();
    assert_eq!(c.nodes[1].roster("doc"), ["alice", "bob"]);

    // Node 0 is cut off; alice's tab gives up on it and restores on node 1, while node 0
    // still has the old, half-open socket.
    c.nodes[0].input(Input::BackendDown);
    c.muted[0] = true;
    c.deaf[0] = true;
    c.nodes[1].advance(ms(5));
    let new = c.nodes[1].connect();
    c.nodes[1].join_on(new, "doc", "alice", spec);
    assert_eq!(
        c.nodes[1].kinds(new),
        ["presence:restored", "presence:currentUsers"]
    );
    c.pump();

    // Node 0 is back: it reads doc again and writes its records again, as the server does.
    c.muted[0] = false;
    c.deaf[0] = false;
    c.nodes[0].input(Input::BackendUp);
    c.pump();
    c.bus.reassert(&c.nodes, 0);
    c.pump();
    assert!(
        c.nodes[0].subscriptions[&old].is_empty(),
        "node 0 yielded its older claim"
    );
    assert_eq!(
        c.nodes[1].subscriptions[&new].len(),
        1,
        "node 1 kept the later claim"
    );
    // Node 0 holds no session in doc any more, so it no longer serves it.
    assert!(c.nodes[0].roster("doc").is_empty());
    assert!(!c.nodes[0].watching.contains(&room("doc")));
    c.nodes[0].close(old);
    c.pump();
    c.advance(GRACE + TTL);
    assert_eq!(c.nodes[1].roster("doc"), ["alice", "bob"]);
    assert!(c.nodes[1]
        .take(bob)
        .iter()
        .all(|f| !matches!(f, ServerMessage::UserLeft { .. })));
    c.nodes[1].leave(new, None);
    c.pump();
    assert_eq!(
        c.nodes[1].roster("doc"),
        ["bob"],
        "the owner's leave ends it"
    );
}

#[test]
fn a_node_serves_only_the_rooms_it_holds_sessions_in() {
    let mut c = Nodes::new(2);
    c.beat();
    let alice = c.nodes[0].join("busy", "alice");
    let _ben = c.nodes[0].join("busy", "ben");
    c.pump();
    c.nodes[0].cursor(alice, "busy", 0.5, 0.5);
    c.nodes[0].update(alice, "busy", r#"{"typing":true}"#);
    c.nodes[0].advance(ms(60));
    c.pump();
    assert!(c.nodes[1].roster("busy").is_empty());
    assert!(c.nodes[1].watching.is_empty(), "node 1 follows no room");
    let stats = c.nodes[1].tracker.stats();
    assert_eq!((stats.rooms, stats.users, stats.sessions), (0, 0, 0));
    assert_eq!(
        stats.interest.applied_facts, 0,
        "node 1 applied nothing of node 0's room"
    );

    // Node 1 starts serving busy: its first joiner sees both, with node 0's colors.
    let carol = c.nodes[1].connect();
    c.nodes[1].join_on(carol, "busy", "carol", JoinSpec::default());
    assert!(
        c.nodes[1].take(carol).is_empty(),
        "no answer before the room's records are read"
    );
    c.pump();
    let frames = c.nodes[1].take(carol);
    let [ServerMessage::CurrentUsers { users, .. }] = frames.as_slice() else {
        panic!("{frames:?}")
    };
    let on_node_0 = c.nodes[0].tracker.roster("busy").unwrap_or_default();
    assert_eq!(
        users[..2],
        on_node_0[..2],
        "the same users, colors, joinedAt and state"
    );

    // Carol leaves: node 1 drops the room and everything it held of it.
    c.nodes[1].leave(carol, None);
    c.pump();
    assert!(c.nodes[1].roster("busy").is_empty());
    assert!(c.nodes[1].watching.is_empty());
    assert_eq!(c.nodes[1].tracker.stats().sessions, 0);
    c.nodes[1].tracker.compact();
    assert_eq!(
        c.nodes[1].tracker.pending_timers(),
        1,
        "no timer of the room is left: only node 0's liveness"
    );
    let applied = c.nodes[1].tracker.stats().interest.applied_facts;
    c.nodes[0].cursor(alice, "busy", 0.7, 0.7);
    c.nodes[0].advance(ms(60));
    c.pump();
    assert_eq!(c.nodes[1].tracker.stats().interest.applied_facts, applied);
}

#[test]
fn a_draining_nodes_room_fact_heard_after_its_leaving_does_not_bring_it_back() {
    let mut c = Nodes::new(2);
    c.beat();
    let alice = c.nodes[0].join("doc", "alice");
    c.pump();
    let bob = c.nodes[1].join("doc", "bob");
    c.pump();
    c.nodes[1].take(bob);

    // On a Redis Cluster the node-wide channel and doc's live on different shards, so
    // node 0's `Leaving` may overtake its last word about doc.
    c.nodes[0].update(alice, "doc", r#"{"tool":"pen"}"#);
    let last_word = c.nodes[0].published();
    c.nodes[0].backend.clear();
    c.muted[0] = true;
    c.nodes[1].input(Input::Remote(Fact::Leaving { node: node_id(0) }));
    for fact in last_word {
        c.nodes[1].input(Input::Remote(fact));
    }
    c.advance(GRACE + ms(100));
    assert_eq!(
        c.nodes[1].roster("doc"),
        ["bob"],
        "alice left after the grace, not a node TTL later"
    );
    assert!(c.nodes[1]
        .take(bob)
        .iter()
        .any(|f| matches!(f, ServerMessage::UserLeft { .. })));
}

#[test]
fn webhook_events_come_from_the_owner_or_from_every_node_for_an_orphan() {
    let mut c = Nodes::new(3);
    c.beat();
    let _alice = c.nodes[0].join("doc", "alice");
    c.pump();
    let _bob = c.nodes[1].join("doc", "bob");
    c.pump();
    let _carol = c.nodes[2].join("doc", "carol");
    c.pump();
    let kinds = |n: &mut Harness| -> Vec<String> {
        std::mem::take(&mut n.notified)
            .into_iter()
            .map(|e| {
                format!("{e:?}")
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(kinds(&mut c.nodes[0]), ["RoomOccupied", "UserJoined"]);
    assert_eq!(
        kinds(&mut c.nodes[1]),
        ["UserJoined"],
        "the room had alice already: only bob's own node reports bob"
    );
    assert_eq!(kinds(&mut c.nodes[2]), ["UserJoined"]);

    // Node 0 dies: both survivors end alice's orphaned session, and both may report it;
    // the shell's claim lets one of them send it.
    c.kill(0);
    c.advance(TTL + GRACE + secs(1));
    for i in [1, 2] {
        let left: Vec<_> = std::mem::take(&mut c.nodes[i].notified)
            .into_iter()
            .filter_map(|e| match e {
                presence_core::RoomEvent::UserLeft { user, shared, .. } => {
                    Some((user.id.to_string(), shared))
                }
                _ => None,
            })
            .collect();
        assert_eq!(left, [("alice".to_owned(), true)], "node {i}");
    }
}
