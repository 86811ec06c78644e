//! Presence stories stepped through virtual time: every semantic of the contract, one
//! story each, checked by what each connection would receive.

use presence_core::testing::{ms, room, secs, state, Harness, JoinSpec};
use presence_core::{color_for, CloseReason, Config, ConnId, Input, PALETTE};
use presence_protocol::{ErrorCode, ServerMessage};

fn harness() -> Harness {
    Harness::new(Config {
        reconnect_grace: secs(10),
        heartbeat_timeout: secs(60),
        cursor_interval: ms(50),
        ..Config::default()
    })
}

fn spec_session(id: &str) -> JoinSpec {
    JoinSpec {
        session_id: Some(id.to_owned()),
        ..JoinSpec::default()
    }
}

#[test]
fn the_joiner_gets_the_roster_and_the_others_get_user_joined() {
    let mut h = harness();
    let alice = h.join("lobby", "alice");
    let bob = h.join("lobby", "bob");

    let to_bob = h.take(bob);
    let [ServerMessage::CurrentUsers {
        users,
        me,
        room: r,
        count,
        spectators,
    }] = to_bob.as_slice()
    else {
        panic!("bob got {to_bob:?}")
    };
    assert_eq!(r.as_str(), "lobby");
    assert_eq!((*count, *spectators), (2, 0));
    assert_eq!(me.id.as_str(), "bob");
    assert_eq!(me.session_id.as_str(), "fresh-2");
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["alice", "bob"]);

    let to_alice = h.take(alice);
    assert_eq!(to_alice.len(), 2, "{to_alice:?}");
    assert!(
        matches!(&to_alice[1], ServerMessage::UserJoined { user, .. } if user.id.as_str() == "bob")
    );
}

#[test]
fn a_user_is_listed_once_however_many_tabs_and_leaves_with_the_last() {
    let mut h = harness();
    let observer = h.join("doc", "olga");
    let tab1 = h.join("doc", "alice");
    let tab2 = h.join("doc", "alice");
    // The second tab is no join, but the count it adds is news.
    let frames = h.take(observer);
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert!(matches!(&frames[1], ServerMessage::UserJoined { .. }));
    assert!(matches!(&frames[2], ServerMessage::UserUpdated { user, .. } if user.sessions == 2));
    assert_eq!(h.roster("doc"), ["alice", "olga"]);
    assert_eq!(h.user("doc", "alice").map(|u| u.sessions), Some(2));

    h.leave(tab1, Some("doc"));
    let frames = h.take(observer);
    assert!(
        matches!(&frames[..], [ServerMessage::UserUpdated { user, .. }] if user.sessions == 1),
        "a second tab still holds alice: {frames:?}"
    );
    assert_eq!(h.user("doc", "alice").map(|u| u.sessions), Some(1));

    h.leave(tab2, Some("doc"));
    let left = h.take(observer);
    assert!(
        matches!(&left[..], [ServerMessage::UserLeft { user_id, .. }] if user_id.as_str() == "alice")
    );
    assert_eq!(h.roster("doc"), ["olga"]);
}

#[test]
fn explicit_leave_is_immediate_and_leave_without_room_leaves_every_room() {
    let mut h = harness();
    let observer_a = h.join("a", "olga");
    let observer_b = h.join("b", "olga");
    let alice = h.join("a", "alice");
    h.join_on(alice, "b", "alice", JoinSpec::default());
    h.take(observer_a);
    h.take(observer_b);

    h.leave(alice, None);
    assert_eq!(h.kinds(observer_a), ["presence:userLeft"]);
    assert_eq!(h.kinds(observer_b), ["presence:userLeft"]);
    assert!(h.subscriptions[&alice].is_empty());
}

#[test]
fn a_closed_connection_stays_visible_for_the_grace_then_leaves() {
    let mut h = harness();
    let observer = h.join("lobby", "olga");
    let alice = h.join("lobby", "alice");
    h.take(observer);

    h.close(alice);
    h.advance(ms(9_999));
    assert_eq!(h.roster("lobby"), ["alice", "olga"]);
    assert!(h.kinds(observer).is_empty());

    h.advance(ms(1));
    assert_eq!(h.roster("lobby"), ["olga"]);
    assert_eq!(h.kinds(observer), ["presence:userLeft"]);
}

#[test]
fn a_restore_within_the_grace_keeps_color_joined_at_state_and_cursor_silently() {
    let mut h = harness();
    let observer = h.join("lobby", "olga");
    let alice = h.connect();
    let spec = JoinSpec {
        state: Some(state(r#"{"tool":"pen"}"#)),
        ..spec_session("tab-1")
    };
    h.join_on(alice, "lobby", "alice", spec);
    h.cursor(alice, "lobby", 0.25, 0.75);
    h.advance(ms(100));
    let before = h.user("lobby", "alice").expect("alice listed");
    h.take(observer);

    h.close(alice);
    h.advance(secs(5));
    let again = h.connect();
    // The restoring join's own state does not overwrite the held one.
    let spec = JoinSpec {
        state: Some(state(r#"{"tool":"eraser"}"#)),
        ..spec_session("tab-1")
    };
    h.join_on(again, "lobby", "alice", spec);

    let frames = h.take(again);
    let [ServerMessage::Restored {
        user, session_id, ..
    }, ServerMessage::CurrentUsers { me, .. }] = frames.as_slice()
    else {
        panic!("restore sent {frames:?}")
    };
    assert_eq!(session_id.as_str(), "tab-1");
    assert_eq!(me.session_id.as_str(), "tab-1");
    assert_eq!(user.color, before.color);
    assert_eq!(user.joined_at, before.joined_at);
    assert_eq!(user.state, before.state);
    assert_eq!(user.cursor, before.cursor);
    assert_eq!(user.cursor.x, 0.25);

    h.advance(secs(30));
    assert!(
        h.kinds(observer).is_empty(),
        "others see no leave and no join"
    );
    assert_eq!(h.roster("lobby"), ["alice", "olga"]);
}

#[test]
fn another_user_can_never_restore_a_session() {
    let mut h = harness();
    let alice = h.connect();
    h.join_on(alice, "lobby", "alice", spec_session("tab-1"));
    h.close(alice);

    let mallory = h.connect();
    h.join_on(mallory, "lobby", "mallory", spec_session("tab-1"));
    let frames = h.take(mallory);
    let [ServerMessage::CurrentUsers { me, users, .. }] = frames.as_slice() else {
        panic!("mallory got {frames:?} (a restore would start with presence:restored)")
    };
    assert_eq!(me.id.as_str(), "mallory");
    assert_eq!(
        users.len(),
        2,
        "a session of mallory's own, beside alice's held one"
    );

    h.advance(secs(10));
    assert_eq!(
        h.roster("lobby"),
        ["mallory"],
        "alice's held session still ended on time"
    );
}

#[test]
fn a_restore_detaches_the_connection_that_still_held_the_session() {
    let mut h = harness();
    let old = h.connect();
    h.join_on(old, "lobby", "alice", spec_session("tab-1"));
    let new = h.connect();
    h.join_on(new, "lobby", "alice", spec_session("tab-1"));
    assert_eq!(h.kinds(new), ["presence:restored", "presence:currentUsers"]);
    assert!(h.subscriptions[&old].is_empty());
    assert_eq!(h.kinds(old), ["presence:currentUsers"], "detached silently");

    h.input(Input::Update {
        conn: old,
        room: room("lobby"),
        state: state(r#"{"a":1}"#),
        reference: Some(presence_protocol::Reference::Number(9.into())),
    });
    let frames = h.take(old);
    assert!(matches!(
        &frames[..],
        [ServerMessage::Error {
            code: ErrorCode::NotJoined,
            reference: Some(_),
            ..
        }]
    ));
    // The old socket closing later does not take the restored session with it.
    h.close(old);
    h.advance(secs(20));
    assert_eq!(h.roster("lobby"), ["alice"]);
}

#[test]
fn silence_for_the_heartbeat_timeout_drops_sessions_and_closes_the_connection() {
    let mut h = harness();
    let observer = h.join("lobby", "olga");
    let alice = h.join("lobby", "alice");
    h.take(observer);

    // Pongs keep olga alive; alice says nothing.
    for _ in 0..6 {
        h.advance(secs(20));
        h.activity(observer);
    }
    assert_eq!(h.roster("lobby"), ["olga"]);
    assert_eq!(h.kinds(observer), ["presence:userLeft"]);
    assert_eq!(h.closed_by_server, [(alice, CloseReason::HeartbeatTimeout)]);
}

#[test]
fn the_heartbeat_timeout_counts_from_the_last_sign_of_life() {
    let mut h = harness();
    let alice = h.join("lobby", "alice");
    h.advance(secs(59));
    h.input(Input::Activity { conn: alice });
    h.advance(secs(59));
    assert_eq!(h.roster("lobby"), ["alice"]);
    assert!(h.closed_by_server.is_empty());
    h.advance(secs(1));
    assert_eq!(h.roster("lobby"), Vec::<String>::new());
    assert!(
        h.tracker.roster("lobby").is_none(),
        "an empty room is forgotten"
    );
}

#[test]
fn updates_merge_shallowly_delete_with_null_and_reach_everyone_else() {
    let mut h = harness();
    let observer = h.join("doc", "olga");
    let tab1 = h.join("doc", "alice");
    let tab2 = h.join("doc", "alice");
    h.take(observer);
    h.take(tab1);
    h.take(tab2);

    h.update(tab1, "doc", r#"{"typing":true,"tool":{"kind":"pen"}}"#);
    h.update(tab1, "doc", r#"{"typing":null,"tool":{"size":2}}"#);
    let user = h.user("doc", "alice").expect("listed");
    assert_eq!(user.state, state(r#"{"tool":{"size":2}}"#));
    assert_eq!(
        h.kinds(observer),
        ["presence:userUpdated", "presence:userUpdated"]
    );
    assert_eq!(
        h.kinds(tab2).len(),
        2,
        "the user's other tab is someone else too"
    );
    assert!(h.take(tab1).is_empty(), "never echoed to the sender");

    h.update(tab1, "doc", r#"{"tool":{"size":2}}"#);
    assert!(
        h.take(observer).is_empty(),
        "an update that changes nothing is not broadcast"
    );
}

#[test]
fn state_over_the_limit_is_too_large_and_nothing_is_applied() {
    let mut h = Harness::new(Config {
        max_state_bytes: 64,
        ..Config::default()
    });
    let alice = h.join("doc", "alice");
    h.take(alice);
    h.update(alice, "doc", r#"{"a":"0123456789"}"#);
    let big = format!(r#"{{"b":"{}"}}"#, "x".repeat(60));
    h.update(alice, "doc", &big);
    let frames = h.take(alice);
    assert!(matches!(
        &frames[..],
        [ServerMessage::Error {
            code: ErrorCode::TooLarge,
            ..
        }]
    ));
    // Growing by merges is caught too.
    h.update(alice, "doc", &format!(r#"{{"c":"{}"}}"#, "y".repeat(40)));
    assert!(matches!(
        &h.take(alice)[..],
        [ServerMessage::Error {
            code: ErrorCode::TooLarge,
            ..
        }]
    ));
    assert_eq!(
        h.user("doc", "alice").map(|u| u.state),
        Some(state(r#"{"a":"0123456789"}"#))
    );
}

#[test]
fn room_scoped_messages_for_rooms_not_joined_are_not_joined() {
    let mut h = harness();
    let alice = h.join("a", "alice");
    h.take(alice);
    h.update(alice, "b", r#"{"x":1}"#);
    h.cursor(alice, "b", 1.0, 1.0);
    h.leave(alice, Some("b"));
    let codes: Vec<_> = h
        .take(alice)
        .into_iter()
        .map(|m| match m {
            ServerMessage::Error { code, .. } => code,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(codes, [ErrorCode::NotJoined; 3]);
}

#[test]
fn cursors_are_coalesced_per_interval_with_the_latest_position_and_never_echoed() {
    let mut h = harness();
    let alice = h.join("board", "alice");
    let bob = h.join("board", "bob");
    let carol = h.join("board", "carol");
    for conn in [alice, bob, carol] {
        h.take(conn);
    }

    // The room was quiet: the first move goes out at once.
    h.cursor(alice, "board", 1.0, 1.0);
    assert_eq!(h.kinds(bob), ["presence:cursors"]);
    assert_eq!(h.kinds(carol), ["presence:cursors"]);
    assert!(h.take(alice).is_empty());

    // Within the interval, moves pile up: one frame at its end, latest position per user.
    h.advance(ms(10));
    h.cursor(alice, "board", 2.0, 2.0);
    h.cursor(alice, "board", 3.0, 3.0);
    h.cursor(bob, "board", 7.0, 7.0);
    assert!(h.take(carol).is_empty());
    h.advance(ms(39));
    assert!(h.take(carol).is_empty());
    h.advance(ms(1));

    let to_carol = h.take(carol);
    let [ServerMessage::Cursors { cursors, .. }] = to_carol.as_slice() else {
        panic!("carol got {to_carol:?}")
    };
    let entries: Vec<(&str, f64)> = cursors.iter().map(|c| (c.user_id.as_str(), c.x)).collect();
    assert_eq!(entries, [("alice", 3.0), ("bob", 7.0)]);

    let to_alice = h.take(alice);
    let [ServerMessage::Cursors { cursors, .. }] = to_alice.as_slice() else {
        panic!("alice got {to_alice:?}")
    };
    assert_eq!(
        cursors
            .iter()
            .map(|c| c.user_id.as_str())
            .collect::<Vec<_>>(),
        ["bob"]
    );
    let to_bob = h.take(bob);
    let [ServerMessage::Cursors { cursors, .. }] = to_bob.as_slice() else {
        panic!("bob got {to_bob:?}")
    };
    assert_eq!(
        cursors
            .iter()
            .map(|c| c.user_id.as_str())
            .collect::<Vec<_>>(),
        ["alice"]
    );
    assert_eq!(h.user("board", "alice").map(|u| u.cursor.x), Some(3.0));
}

#[test]
fn batch_sessions_get_one_diff_per_interval_instead_of_single_events() {
    let mut h = harness();
    let watcher = h.connect();
    h.join_on(
        watcher,
        "doc",
        "wendy",
        JoinSpec {
            batch: true,
            ..JoinSpec::default()
        },
    );
    // The room was quiet, so the diff that tells batch sessions of wendy goes out at once,
    // to wendy too: diffs are shared frames and upserts (docs/protocol.md).
    assert_eq!(h.kinds(watcher), ["presence:currentUsers", "presence:diff"]);
    h.advance(ms(50));

    let alice = h.join("doc", "alice"); // quiet room: flushed at once
    let frames = h.take(watcher);
    let [ServerMessage::Diff {
        joined,
        left,
        updated,
        ..
    }] = frames.as_slice()
    else {
        panic!("{frames:?}")
    };
    assert_eq!((joined.len(), left.len(), updated.len()), (1, 0, 0));

    // Within one interval: bob joins and leaves, alice updates, leaves, returns. bob's
    // visit still ends in a `left`: a batch session that joined in between listed him.
    let bob = h.join("doc", "bob");
    h.leave(bob, None);
    h.update(alice, "doc", r#"{"x":1}"#);
    h.leave(alice, None);
    let _alice_again = h.join("doc", "alice");
    assert!(
        h.take(watcher).is_empty(),
        "nothing before the interval ends"
    );
    h.advance(ms(50));
    let frames = h.take(watcher);
    let [ServerMessage::Diff {
        joined,
        left,
        updated,
        ..
    }] = frames.as_slice()
    else {
        panic!("{frames:?}")
    };
    let joined: Vec<&str> = joined.iter().map(|u| u.id.as_str()).collect();
    let left: Vec<&str> = left.iter().map(|u| u.as_str()).collect();
    assert_eq!(joined, ["alice"]);
    assert_eq!(left, ["bob", "alice"]);
    assert!(updated.is_empty());
}

#[test]
fn a_batch_session_that_joins_between_a_join_and_a_leave_hears_the_leave() {
    let mut h = harness();
    let first = h.connect();
    h.join_on(
        first,
        "doc",
        "ann",
        JoinSpec {
            batch: true,
            ..JoinSpec::default()
        },
    );
    h.advance(ms(100));
    let visitor = h.join("doc", "bob");
    let late = h.connect();
    h.join_on(
        late,
        "doc",
        "cat",
        JoinSpec {
            batch: true,
            ..JoinSpec::default()
        },
    );
    let snapshot = h.take(late);
    assert!(matches!(&snapshot[0], ServerMessage::CurrentUsers { users, .. } if users.len() == 3));
    h.leave(visitor, None);
    h.advance(ms(60));
    let left: Vec<String> = h
        .take(late)
        .into_iter()
        .flat_map(|frame| match frame {
            ServerMessage::Diff { left, .. } => left,
            _ => Vec::new(),
        })
        .map(|id| id.to_string())
        .collect();
    assert_eq!(left, ["bob"], "no ghost of bob");
}

#[test]
fn colors_are_per_user_and_distinct_within_a_room_while_the_palette_allows() {
    let mut h = harness();
    let alice = h.join("one", "alice");
    h.join_on(alice, "two", "alice", JoinSpec::default());
    let color = h.user("one", "alice").map(|u| u.color);
    assert_eq!(color.as_deref(), Some(PALETTE[color_for("alice")]));
    assert_eq!(h.user("two", "alice").map(|u| u.color), color);

    let ids: Vec<String> = (0..PALETTE.len()).map(|i| format!("user-{i}")).collect();
    for id in &ids {
        h.join("crowd", id);
    }
    let mut colors: Vec<String> = h
        .tracker
        .roster("crowd")
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.color)
        .collect();
    colors.sort();
    colors.dedup();
    assert_eq!(colors.len(), PALETTE.len(), "sixteen users, sixteen colors");
}

#[test]
fn a_full_room_refuses_new_users_but_not_new_tabs() {
    let mut h = Harness::new(Config {
        max_members_per_room: Some(1),
        ..Config::default()
    });
    let _alice = h.join("tiny", "alice");
    let bob = h.join("tiny", "bob");
    assert!(matches!(
        &h.take(bob)[..],
        [ServerMessage::Error {
            code: ErrorCode::RoomFull,
            ..
        }]
    ));
    let alice2 = h.join("tiny", "alice");
    assert_eq!(h.kinds(alice2), ["presence:currentUsers"]);
}

#[test]
fn a_user_is_away_only_while_every_session_says_so() {
    let mut h = harness();
    let observer = h.join("doc", "olga");
    let tab1 = h.join("doc", "alice");
    let tab2 = h.join("doc", "alice");
    h.take(observer);
    let away = |h: &Harness| {
        h.user("doc", "alice")
            .and_then(|u| u.state.get("away").cloned())
    };

    h.update(tab1, "doc", r#"{"away":true}"#);
    assert_eq!(away(&h), None);
    assert!(h.take(observer).is_empty(), "nothing visible changed");
    h.update(tab2, "doc", r#"{"away":true}"#);
    assert_eq!(away(&h), Some(serde_json::Value::Bool(true)));
    assert_eq!(h.kinds(observer), ["presence:userUpdated"]);
    h.update(tab1, "doc", r#"{"away":null}"#);
    assert_eq!(away(&h), None);
    assert_eq!(h.kinds(observer), ["presence:userUpdated"]);

    h.take(tab1);
    h.update(tab1, "doc", r#"{"away":"yes"}"#);
    assert!(matches!(
        &h.take(tab1)[..],
        [ServerMessage::Error {
            code: ErrorCode::InvalidMessage,
            ..
        }]
    ));
}

#[test]
fn a_second_join_on_one_connection_refreshes_instead_of_duplicating() {
    let mut h = harness();
    let observer = h.join("doc", "olga");
    let alice = h.join("doc", "alice");
    h.take(observer);
    h.join_on(alice, "doc", "alice", JoinSpec::default());
    assert_eq!(h.user("doc", "alice").map(|u| u.sessions), Some(1));
    assert!(h.take(observer).is_empty());
    // Another user on the same connection replaces the first.
    h.join_on(alice, "doc", "bob", JoinSpec::default());
    assert_eq!(h.roster("doc"), ["bob", "olga"]);
    assert_eq!(
        h.kinds(observer),
        ["presence:userLeft", "presence:userJoined"]
    );
}

#[test]
fn expiry_work_is_proportional_to_what_expires() {
    let mut h = harness();
    for i in 0..300 {
        h.join("big", &format!("u{i}"));
    }
    let timers = h.tracker.pending_timers();
    // One silence timer per connection, plus flushes already run: no per-tick growth.
    h.advance(secs(1));
    h.advance(secs(1));
    assert_eq!(h.tracker.pending_timers(), timers);
    h.close(ConnId(1));
    assert_eq!(h.tracker.pending_timers(), timers + 1);
}

#[test]
fn compaction_forgets_stale_deadlines_and_keeps_live_ones() {
    let mut h = harness();
    let stayer = h.join("doc", "olga");
    for i in 0..200 {
        let conn = h.join("doc", &format!("u{i}"));
        h.leave(conn, None);
    }
    let closer = h.join("doc", "carl");
    h.close(closer);
    assert!(
        h.tracker.pending_timers() > 200,
        "stale silence timers pile up until they fire"
    );
    h.tracker.compact();
    // Live: olga's silence timer and carl's grace end (carl's silence timer is stale).
    assert_eq!(h.tracker.pending_timers(), 2);
    h.advance(secs(10));
    assert_eq!(h.roster("doc"), ["olga"], "the grace still ends on time");
    h.activity(stayer);
    h.advance(secs(59));
    assert_eq!(
        h.roster("doc"),
        ["olga"],
        "olga's silence timer survived compaction"
    );
    h.advance(secs(1));
    assert!(h.roster("doc").is_empty(), "and still fires at the timeout");
}

#[test]
fn a_page_that_unloads_is_restored_by_its_reload_unseen() {
    let mut h = harness();
    let observer = h.join("lobby", "olga");
    let alice = h.connect();
    h.join_on(alice, "lobby", "alice", spec_session("tab-1"));
    h.take_all();
    // pagehide: a leave with reason "unload", then the socket goes.
    h.unload(alice);
    h.close(alice);
    h.advance(ms(1500));
    let reloaded = h.connect();
    h.join_on(reloaded, "lobby", "alice", spec_session("tab-1"));
    let kinds: Vec<&str> = h.kinds(reloaded);
    assert_eq!(kinds, ["presence:restored", "presence:currentUsers"]);
    h.advance(secs(30));
    assert!(
        h.kinds(observer).is_empty(),
        "others see no leave and no join"
    );
    assert_eq!(h.roster("lobby"), ["alice", "olga"]);
}

#[test]
fn a_closed_tab_leaves_at_the_unload_grace_not_the_reconnect_grace() {
    let mut h = harness();
    let observer = h.join("lobby", "olga");
    let alice = h.join("lobby", "alice");
    h.take_all();
    h.unload(alice);
    h.close(alice);
    h.advance(ms(1999));
    assert!(h.kinds(observer).is_empty(), "held for the unload grace");
    h.advance(ms(1));
    assert_eq!(h.kinds(observer), ["presence:userLeft"]);
    assert_eq!(h.roster("lobby"), ["olga"]);
}

#[test]
fn sessions_written_down_by_a_stopping_node_are_restored_after_its_restart_unseen() {
    let mut before = harness();
    let alice = before.connect();
    before.join_on(alice, "doc", "alice", spec_session("tab-a"));
    before.update(alice, "doc", r#"{"tool":"pen"}"#);
    before.advance(ms(5));
    let bob = before.connect();
    before.join_on(bob, "doc", "bob", spec_session("tab-b"));
    before.advance(ms(5));
    let carol = before.connect();
    before.join_on(carol, "doc", "carol", spec_session("tab-c"));
    let listed = before.tracker.roster("doc").unwrap_or_default();
    // SIGTERM: the connections close, the sessions are written down.
    for conn in [alice, bob, carol] {
        before.close(conn);
    }
    let written = before.tracker.local_records();

    // The new process holds them, detached, in arrival order, with nothing sent.
    let mut after = harness();
    after.tracker.hold_restored(written, after.now);
    assert_eq!(after.tracker.roster("doc").unwrap_or_default(), listed);
    let bob = after.connect();
    after.join_on(bob, "doc", "bob", spec_session("tab-b"));
    let alice = after.connect();
    after.join_on(alice, "doc", "alice", spec_session("tab-a"));
    assert_eq!(
        after.kinds(bob),
        ["presence:restored", "presence:currentUsers"],
        "bob restores, and hears nothing of alice restoring"
    );
    let frames = after.take(alice);
    let [ServerMessage::Restored { user, .. }, ServerMessage::CurrentUsers { users, .. }] =
        frames.as_slice()
    else {
        panic!("{frames:?}")
    };
    assert_eq!(user.state["tool"], "pen");
    let seen = |users: &[presence_protocol::User]| -> Vec<_> {
        users
            .iter()
            .map(|u| {
                (
                    u.id.clone(),
                    u.color.clone(),
                    u.joined_at,
                    u.state.clone(),
                    u.sessions,
                )
            })
            .collect()
    };
    assert_eq!(
        seen(users),
        seen(&listed),
        "same users, order, colors and joinedAt"
    );

    // Carol never comes back: she leaves when the fresh grace ends, and only then.
    after.advance(secs(9));
    assert!(after.take(bob).is_empty());
    after.advance(secs(2));
    assert_eq!(after.roster("doc"), ["alice", "bob"]);
    assert_eq!(after.kinds(bob), ["presence:userLeft"]);
}

/// The webhook events so far, as short strings, and forgets them.
fn events(h: &mut Harness) -> Vec<String> {
    std::mem::take(&mut h.notified)
        .into_iter()
        .map(|event| match event {
            presence_core::RoomEvent::UserJoined { user, .. } => format!("joined {}", user.id),
            presence_core::RoomEvent::UserLeft { user, shared, .. } => {
                format!("left {}{}", user.id, if shared { " (shared)" } else { "" })
            }
            presence_core::RoomEvent::RoomOccupied { room } => format!("occupied {room}"),
            presence_core::RoomEvent::RoomVacated { room } => format!("vacated {room}"),
        })
        .collect()
}

#[test]
fn webhook_events_tell_of_real_arrivals_and_departures_only() {
    let mut h = harness();
    let alice = h.connect();
    h.join_on(alice, "doc", "alice", spec_session("tab-a"));
    assert_eq!(events(&mut h), ["occupied doc", "joined alice"]);
    let bob = h.connect();
    h.join_on(bob, "doc", "bob", spec_session("tab-b"));
    let second_tab = h.join("doc", "bob");
    assert_eq!(events(&mut h), ["joined bob"], "a second tab is no arrival");

    // A reload and a dropped network that comes back within the grace are no news.
    h.unload(alice);
    let alice = h.connect();
    h.join_on(alice, "doc", "alice", spec_session("tab-a"));
    h.close(bob);
    h.advance(secs(5));
    let bob = h.connect();
    h.join_on(bob, "doc", "bob", spec_session("tab-b"));
    h.leave(second_tab, None);
    assert_eq!(events(&mut h), Vec::<String>::new());

    // Bob's last session ends with the grace; alice leaves, and the room is empty.
    h.close(bob);
    h.advance(secs(9));
    assert_eq!(
        events(&mut h),
        Vec::<String>::new(),
        "still within the grace"
    );
    h.advance(secs(2));
    assert_eq!(events(&mut h), ["left bob"]);
    h.leave(alice, None);
    assert_eq!(events(&mut h), ["left alice", "vacated doc"]);
}
