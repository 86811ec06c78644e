//! Large rooms in virtual time: list views, counts and spectators (protocol 1.1). Each
//! story checks what one connection receives, frame by frame.

use presence_core::testing::{ms, node_id, room, secs, Harness, JoinSpec};
use presence_core::{Authority, Config, ConnId, Fact, Input};
use presence_protocol::{ErrorCode, ServerMessage, SessionId, UserId, View};

fn harness() -> Harness {
    Harness::new(Config {
        reconnect_grace: secs(10),
        heartbeat_timeout: secs(60),
        cursor_interval: ms(50),
        ..Config::default()
    })
}

fn list(k: u16) -> JoinSpec {
    JoinSpec {
        view: Some(View::List(k)),
        ..JoinSpec::default()
    }
}

fn spectator(view: Option<View>) -> JoinSpec {
    JoinSpec {
        view,
        spectator: true,
        ..JoinSpec::default()
    }
}

/// Joins users one millisecond apart, so their `joinedAt` orders them.
fn room_of(h: &mut Harness, users: &[&str]) -> Vec<ConnId> {
    users
        .iter()
        .map(|user| {
            let conn = h.join("hall", user);
            h.advance(ms(1));
            conn
        })
        .collect()
}

fn join_with(h: &mut Harness, user: &str, spec: JoinSpec) -> ConnId {
    let conn = h.connect();
    h.join_on(conn, "hall", user, spec);
    conn
}

/// The user ids of a `currentUsers`, with its numbers.
fn current(frames: &[ServerMessage]) -> (Vec<String>, u64, u64) {
    let found = frames.iter().find_map(|frame| match frame {
        ServerMessage::CurrentUsers {
            users,
            count,
            spectators,
            ..
        } => Some((
            users.iter().map(|u| u.id.to_string()).collect(),
            *count,
            *spectators,
        )),
        _ => None,
    });
    found.unwrap_or_else(|| panic!("no currentUsers in {frames:?}"))
}

/// Roster events as short strings: `+id`, `-id`, `~id`.
fn events(frames: &[ServerMessage]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|frame| match frame {
            ServerMessage::UserJoined { user, .. } => Some(format!("+{}", user.id)),
            ServerMessage::UserLeft { user_id, .. } => Some(format!("-{user_id}")),
            ServerMessage::UserUpdated { user, .. } => Some(format!("~{}", user.id)),
            _ => None,
        })
        .collect()
}

fn counts(frames: &[ServerMessage]) -> Vec<(u64, u64)> {
    frames
        .iter()
        .filter_map(|frame| match frame {
            ServerMessage::Count {
                count, spectators, ..
            } => Some((*count, *spectators)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_list_view_holds_the_first_k_and_the_next_user_enters_when_one_leaves() {
    let mut h = harness();
    let conns = room_of(&mut h, &["ann", "bea", "cid", "dan"]);
    let viewer = join_with(&mut h, "vic", list(2));
    let frames = h.take(viewer);
    assert_eq!(
        current(&frames),
        (vec!["ann".into(), "bea".into(), "vic".into()], 5, 0)
    );

    // Outside the window: nothing but the count.
    h.leave(conns[3], None);
    h.advance(ms(60));
    let frames = h.take(viewer);
    assert!(events(&frames).is_empty(), "{frames:?}");
    assert_eq!(counts(&frames), [(4, 0)]);

    // A listed user leaves: it goes, and the next in order comes in.
    h.leave(conns[0], None);
    assert_eq!(events(&h.take(viewer)), ["-ann", "+cid"]);

    // A change inside the window is sent; one outside is not.
    h.update(conns[1], "hall", r#"{"typing":true}"#);
    assert_eq!(events(&h.take(viewer)), ["~bea"]);
    let late = h.join("hall", "zoe");
    h.update(late, "hall", r#"{"typing":true}"#);
    assert!(events(&h.take(viewer)).is_empty());
}

#[test]
fn a_user_listed_ahead_pushes_the_last_one_out_and_lets_it_back_when_gone() {
    // Another node's user with an earlier `joinedAt` lands ahead of the window's last.
    let mut h = Harness::cluster_node(0, secs(3), secs(10));
    let ann = h.join("hall", "ann");
    h.input(Input::Records {
        room: room("hall"),
        records: Vec::new(),
        gone: Vec::new(),
        authority: Authority::Complete,
    });
    h.advance(ms(1));
    let viewer = join_with(&mut h, "vic", list(1));
    assert_eq!(current(&h.take(viewer)).0, ["ann", "vic"]);
    h.take(ann);

    let mut record = h.tracker.local_records()[0].clone();
    record.session_id = SessionId::new("elsewhere").expect("id");
    record.user.id = UserId::new("abe").expect("id");
    record.user.joined_at -= 1_000;
    h.input(Input::Remote(Fact::Session {
        node: node_id(1),
        record,
    }));
    // ann, the later arrival sharing abe's color, moves to a free one: news for whoever
    // sees ann, which the viewer no longer does.
    assert_eq!(events(&h.take(viewer)), ["+abe", "-ann"]);
    assert_eq!(events(&h.take(ann)), ["+abe", "~ann"]);

    h.input(Input::Remote(Fact::SessionEnded {
        node: node_id(1),
        room: room("hall"),
        user_id: UserId::new("abe").expect("id"),
        session_id: SessionId::new("elsewhere").expect("id"),
    }));
    assert_eq!(events(&h.take(viewer)), ["-abe", "+ann"]);
}

#[test]
fn ties_in_joined_at_are_broken_by_user_id() {
    let mut h = harness();
    // Same millisecond: "amy" comes before "zed" whatever the arrival order.
    h.join("hall", "zed");
    h.join("hall", "amy");
    h.advance(ms(1));
    let viewer = join_with(&mut h, "vic", list(1));
    assert_eq!(current(&h.take(viewer)).0, ["amy", "vic"]);
}

#[test]
fn a_window_larger_than_the_room_sees_everyone_come_and_go() {
    let mut h = harness();
    room_of(&mut h, &["ann"]);
    let viewer = join_with(&mut h, "vic", list(10));
    assert_eq!(current(&h.take(viewer)).0, ["ann", "vic"]);
    h.advance(ms(1));
    let bea = h.join("hall", "bea");
    assert_eq!(events(&h.take(viewer)), ["+bea"]);
    h.leave(bea, None);
    assert_eq!(events(&h.take(viewer)), ["-bea"]);
}

#[test]
fn k_zero_sees_only_its_own_user_and_the_numbers() {
    let mut h = harness();
    room_of(&mut h, &["ann", "bea"]);
    let viewer = join_with(&mut h, "vic", list(0));
    assert_eq!(current(&h.take(viewer)), (vec!["vic".into()], 3, 0));
    h.advance(ms(100));
    h.take(viewer);
    let cid = h.join("hall", "cid");
    h.update(cid, "hall", r#"{"typing":true}"#);
    h.advance(ms(60));
    let frames = h.take(viewer);
    assert!(events(&frames).is_empty(), "{frames:?}");
    assert_eq!(counts(&frames), [(4, 0)]);
}

#[test]
fn the_own_user_is_always_in_its_windows_and_its_changes_reach_its_other_tabs() {
    let mut h = harness();
    room_of(&mut h, &["ann", "bea", "cid"]);
    let tab1 = join_with(&mut h, "vic", list(1));
    let tab2 = join_with(&mut h, "vic", list(1));
    h.take(tab1);
    assert_eq!(current(&h.take(tab2)).0, ["ann", "vic"]);
    h.update(tab2, "hall", r#"{"mood":"ok"}"#);
    assert_eq!(events(&h.take(tab1)), ["~vic"]);
    assert!(events(&h.take(tab2)).is_empty());
}

#[test]
fn spectators_are_counted_never_listed_and_cannot_update_or_point() {
    let mut h = harness();
    let conns = room_of(&mut h, &["ann", "bea"]);
    h.take(conns[0]);
    let full_watcher = join_with(&mut h, "eve", spectator(None));
    let frames = h.take(full_watcher);
    assert_eq!(current(&frames), (vec!["ann".into(), "bea".into()], 2, 1));
    assert_eq!(h.roster("hall"), ["ann", "bea"]);
    assert!(
        events(&h.take(conns[0])).is_empty(),
        "a spectator is no news for the listed"
    );

    h.update(full_watcher, "hall", r#"{"x":1}"#);
    h.cursor(full_watcher, "hall", 0.5, 0.5);
    let refused: Vec<ErrorCode> = h
        .take(full_watcher)
        .into_iter()
        .filter_map(|frame| match frame {
            ServerMessage::Error { code, .. } => Some(code),
            _ => None,
        })
        .collect();
    assert_eq!(refused, [ErrorCode::Forbidden, ErrorCode::Forbidden]);

    // A list viewer and the spectator both hear the numbers; the full-view member does not.
    let viewer = join_with(&mut h, "vic", list(5));
    assert_eq!(
        current(&h.take(viewer)),
        (vec!["ann".into(), "bea".into(), "vic".into()], 3, 1)
    );
    h.advance(ms(60));
    assert_eq!(counts(&h.take(full_watcher)), [(3, 1)]);
    assert_eq!(counts(&h.take(viewer)), [(3, 1)], "one frame for everyone");
    h.leave(full_watcher, None);
    h.advance(ms(60));
    assert_eq!(counts(&h.take(viewer)), [(3, 0)]);
    let to_ann = h.take(conns[0]);
    assert!(counts(&to_ann).is_empty(), "{to_ann:?}");
    assert_eq!(events(&to_ann), ["+vic"]);
}

#[test]
fn a_user_with_a_listed_and_a_spectator_session_is_listed_while_the_listed_one_lives() {
    let mut h = harness();
    let ann = room_of(&mut h, &["ann"])[0];
    let watcher = join_with(&mut h, "ann", spectator(Some(View::List(3))));
    assert_eq!(current(&h.take(watcher)), (vec!["ann".into()], 1, 1));
    h.leave(ann, None);
    assert_eq!(h.roster("hall"), Vec::<String>::new());
    assert_eq!(events(&h.take(watcher)), ["-ann"]);
    h.advance(ms(60));
    assert_eq!(counts(&h.take(watcher)), [(0, 1)]);
}

#[test]
fn a_restore_keeps_the_view_and_a_spectator_stays_a_spectator() {
    let mut h = harness();
    room_of(&mut h, &["ann", "bea", "cid"]);
    let viewer = join_with(
        &mut h,
        "vic",
        JoinSpec {
            session_id: Some("tab-1".into()),
            ..list(1)
        },
    );
    let watcher = join_with(
        &mut h,
        "eve",
        JoinSpec {
            session_id: Some("tab-2".into()),
            ..spectator(Some(View::List(2)))
        },
    );
    h.close(viewer);
    h.close(watcher);
    let again = join_with(
        &mut h,
        "vic",
        JoinSpec {
            session_id: Some("tab-1".into()),
            ..JoinSpec::default()
        },
    );
    let frames = h.take(again);
    assert!(
        matches!(frames[0], ServerMessage::Restored { .. }),
        "{frames:?}"
    );
    assert_eq!(current(&frames).0, ["ann", "vic"]);

    let back = join_with(
        &mut h,
        "eve",
        JoinSpec {
            session_id: Some("tab-2".into()),
            ..JoinSpec::default()
        },
    );
    let frames = h.take(back);
    assert!(
        matches!(frames[0], ServerMessage::Restored { .. }),
        "{frames:?}"
    );
    assert_eq!(current(&frames), (vec!["ann".into(), "bea".into()], 4, 1));
    h.update(back, "hall", r#"{"x":1}"#);
    assert!(h.take(back).iter().any(|f| matches!(
        f,
        ServerMessage::Error {
            code: ErrorCode::Forbidden,
            ..
        }
    )));
}

#[test]
fn counts_are_coalesced_per_interval_and_carry_the_numbers_at_the_flush() {
    let mut h = harness();
    room_of(&mut h, &["ann"]);
    let viewer = join_with(&mut h, "vic", list(0));
    h.advance(ms(100));
    h.take(viewer);
    for user in ["u1", "u2", "u3", "u4", "u5"] {
        h.join("hall", user);
    }
    let spectator = join_with(&mut h, "eve", spectator(None));
    // The first change of a quiet room goes at once; everything after waits for the
    // interval and goes as one frame with the numbers as they are then.
    let first = counts(&h.take(viewer));
    assert_eq!(first, [(3, 0)]);
    h.advance(ms(50));
    assert_eq!(counts(&h.take(viewer)), [(7, 1)]);
    h.advance(ms(500));
    assert!(counts(&h.take(viewer)).is_empty(), "nothing changed");
    h.leave(spectator, None);
    h.advance(ms(50));
    assert_eq!(counts(&h.take(viewer)), [(7, 0)]);
}

#[test]
fn a_full_view_client_sees_nothing_new_but_the_numbers_in_current_users() {
    let mut h = harness();
    let ann = room_of(&mut h, &["ann"])[0];
    join_with(&mut h, "eve", spectator(None));
    let bea = h.join("hall", "bea");
    h.advance(ms(100));
    assert_eq!(
        current(&h.take(bea)),
        (vec!["ann".into(), "bea".into()], 2, 1)
    );
    let frames = h.take(ann);
    assert!(counts(&frames).is_empty(), "{frames:?}");
    assert_eq!(events(&frames), ["+bea"]);
}

#[test]
fn cursors_outside_the_window_are_never_delivered() {
    let mut h = harness();
    let conns = room_of(&mut h, &["ann", "bea", "cid"]);
    let viewer = join_with(&mut h, "vic", list(1));
    h.advance(ms(100));
    h.take(viewer);
    for (i, conn) in conns.iter().enumerate() {
        h.cursor(*conn, "hall", i as f64 / 10.0, 0.5);
    }
    h.cursor(viewer, "hall", 0.9, 0.9);
    h.advance(ms(60));
    let seen: Vec<Vec<String>> = h
        .take(viewer)
        .into_iter()
        .filter_map(|frame| match frame {
            ServerMessage::Cursors { cursors, .. } => {
                Some(cursors.iter().map(|c| c.user_id.to_string()).collect())
            }
            _ => None,
        })
        .collect();
    assert_eq!(seen, [vec!["ann".to_owned()]]);
    // A full-view member sees everyone's but its own.
    let to_bea: Vec<String> = h
        .take(conns[1])
        .into_iter()
        .filter_map(|frame| match frame {
            ServerMessage::Cursors { cursors, .. } => Some(cursors),
            _ => None,
        })
        .flatten()
        .map(|c| c.user_id.to_string())
        .collect();
    assert_eq!(to_bea, ["ann", "cid", "vic"]);
}

#[test]
fn a_list_view_with_batches_gets_one_diff_of_its_window() {
    let mut h = harness();
    let conns = room_of(&mut h, &["ann", "bea", "cid"]);
    let viewer = join_with(
        &mut h,
        "vic",
        JoinSpec {
            batch: true,
            ..list(2)
        },
    );
    h.advance(ms(100));
    h.take(viewer);
    let ids = |users: &[presence_protocol::User]| -> Vec<String> {
        users.iter().map(|u| u.id.to_string()).collect()
    };
    let diffs = |h: &mut Harness| -> Vec<(Vec<String>, Vec<String>, Vec<String>)> {
        h.take(viewer)
            .into_iter()
            .filter_map(|frame| match frame {
                ServerMessage::Diff {
                    joined,
                    left,
                    updated,
                    ..
                } => Some((
                    ids(&joined),
                    left.iter().map(|u| u.to_string()).collect(),
                    ids(&updated),
                )),
                _ => None,
            })
            .collect()
    };
    // A quiet room's first change goes at once.
    h.leave(conns[0], None);
    let s = |ids: &[&str]| -> Vec<String> { ids.iter().map(|id| id.to_string()).collect() };
    assert_eq!(diffs(&mut h), [(s(&["cid"]), s(&["ann"]), s(&[]))]);
    // Within the next interval: bea changes then leaves, dan arrives and enters the
    // window in bea's place, one more user arrives out of sight. One diff says it all.
    h.update(conns[1], "hall", r#"{"typing":true}"#);
    h.advance(ms(1));
    h.join("hall", "dan");
    h.leave(conns[1], None);
    h.join("hall", "eli");
    assert!(diffs(&mut h).is_empty());
    h.advance(ms(60));
    assert_eq!(diffs(&mut h), [(s(&["dan"]), s(&["bea"]), s(&[]))]);
}

#[test]
fn a_connection_that_fell_behind_gets_a_fresh_window_of_each_of_its_rooms() {
    let mut h = harness();
    let conns = room_of(&mut h, &["ann", "bea", "cid"]);
    let viewer = join_with(
        &mut h,
        "vic",
        JoinSpec {
            batch: true,
            ..list(1)
        },
    );
    h.join_on(viewer, "annex", "vic", JoinSpec::default());
    h.advance(ms(100));
    h.take(viewer);
    // The shell dropped its queued roster events; the core says it all again, once per
    // room, and drops the diff it was folding for it.
    h.leave(conns[0], None);
    h.advance(ms(10));
    h.input(Input::Resync { conn: viewer });
    let frames = h.take(viewer);
    let rooms: Vec<(String, Vec<String>, u64)> = frames
        .iter()
        .filter_map(|frame| match frame {
            ServerMessage::CurrentUsers {
                room, users, count, ..
            } => Some((
                room.to_string(),
                users.iter().map(|u| u.id.to_string()).collect(),
                *count,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        rooms,
        [
            (
                "hall".to_owned(),
                vec!["bea".to_owned(), "vic".to_owned()],
                3
            ),
            ("annex".to_owned(), vec!["vic".to_owned()], 1),
        ]
    );
    h.advance(ms(60));
    assert!(
        !h.take(viewer)
            .iter()
            .any(|f| matches!(f, ServerMessage::Diff { .. })),
        "no diff repeats what the snapshot said"
    );
}

#[test]
fn spectators_make_no_webhook_events_and_do_not_fill_a_room() {
    let mut h = Harness::new(Config {
        max_members_per_room: Some(1),
        ..Config::default()
    });
    h.join("hall", "ann");
    h.notified.clear();
    let watcher = join_with(&mut h, "eve", spectator(None));
    assert_eq!(current(&h.take(watcher)), (vec!["ann".into()], 1, 1));
    h.leave(watcher, None);
    assert!(h.notified.is_empty(), "{:?}", h.notified);
    // The room holds one listed user; a second listed one is refused.
    let late = h.join("hall", "bea");
    assert!(h.take(late).iter().any(|f| matches!(
        f,
        ServerMessage::Error {
            code: ErrorCode::RoomFull,
            ..
        }
    )));
}
