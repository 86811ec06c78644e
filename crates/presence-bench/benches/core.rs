//! Criterion benches for the hot paths of `presence-core`'s `Tracker`, without sockets:
//! a join into a 10 000-member room, a join into rooms of 1 000 to 100 000 members who
//! all hold a list view of 20 (whose cost must not grow with the room), one cursor
//! interval of a 1 000-member room, and expiry work when 100 000 sessions are held and
//! only a few expire.
//!
//! Run with `cargo bench -p presence-bench --bench core`. Time is virtual: the bench
//! drives the core's own test harness (`presence_core::testing`), but hands inputs to the
//! tracker and drains the effects itself, so it times only what the server would do.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use presence_core::testing::{room, Harness, JoinSpec};
use presence_core::{Config, ConnId, Effect, Input, Tracker};
use presence_protocol::{CursorFrames, RoomName, UserId, View};

/// Joins a new connection as a new user, without running anything else; returns the
/// connection. The effects wait for [`drain`] or [`drain_encoded`].
fn join(bench: &mut Harness, room: &RoomName) -> ConnId {
    join_with_view(bench, room, None)
}

/// [`join`], asking for `view`.
fn join_with_view(bench: &mut Harness, room: &RoomName, view: Option<View>) -> ConnId {
    let conn = bench.connect();
    let n = conn.0;
    let spec = JoinSpec {
        name: Some(format!("User {n}")),
        view,
        ..JoinSpec::default()
    };
    let request = bench.join_request(room.clone(), UserId::generated("u-", n), spec);
    bench.tracker.handle(
        Input::Join {
            conn,
            request,
            reference: None,
        },
        bench.now,
    );
    conn
}

/// Carries out every pending effect the cheapest way: counts them.
fn drain(tracker: &mut Tracker) -> usize {
    let mut count = 0;
    while let Some(effect) = tracker.poll_effect() {
        count += black_box(&effect).recipients();
    }
    count
}

/// Carries out every pending effect as the server does: encodes each message once.
fn drain_encoded(tracker: &mut Tracker) -> usize {
    let mut bytes = 0;
    while let Some(effect) = tracker.poll_effect() {
        match effect {
            Effect::Send { message, .. } | Effect::Broadcast { message, .. } => {
                bytes += message.encode().len();
            }
            Effect::Cursors {
                room,
                cursors,
                recipients,
            } => {
                // As the server does: one encoding, and a mover's frame is the same
                // bytes around a hole (written with `writev`, never copied).
                let frames = CursorFrames::new(&room, &cursors);
                for (_, own) in recipients {
                    let hole = own.and_then(|index| frames.hole(index));
                    bytes += frames.text().len() - hole.map_or(0, |hole| hole.len());
                }
            }
            _ => {}
        }
    }
    bytes
}

trait Recipients {
    fn recipients(&self) -> usize;
}

impl Recipients for Effect {
    fn recipients(&self) -> usize {
        match self {
            Effect::Broadcast { recipients, .. } => recipients.len(),
            Effect::Cursors { recipients, .. } => recipients.len(),
            _ => 1,
        }
    }
}

fn populated(members: usize, room_name: &RoomName, config: Config) -> (Harness, Vec<ConnId>) {
    populated_with_view(members, room_name, config, None)
}

fn populated_with_view(
    members: usize,
    room_name: &RoomName,
    config: Config,
    view: Option<View>,
) -> (Harness, Vec<ConnId>) {
    let mut bench = Harness::new(config);
    let conns = (0..members)
        .map(|_| {
            let conn = join_with_view(&mut bench, room_name, view);
            drain(&mut bench.tracker);
            conn
        })
        .collect();
    (bench, conns)
}

/// Times joins of a new user with `view` into `room` (each undone by a leave, untimed),
/// draining the effects counted or encoded.
fn bench_joins(
    b: &mut criterion::Bencher<'_>,
    bench: &mut Harness,
    room: &RoomName,
    view: Option<View>,
    encode: bool,
) {
    b.iter_custom(|iterations| {
        let mut spent = Duration::ZERO;
        for _ in 0..iterations {
            let started = Instant::now();
            let conn = join_with_view(bench, room, view);
            if encode {
                black_box(drain_encoded(&mut bench.tracker));
            } else {
                black_box(drain(&mut bench.tracker));
            }
            spent += started.elapsed();
            bench.tracker.handle(
                Input::Leave {
                    conn,
                    room: None,
                    unload: false,
                    reference: None,
                },
                bench.now,
            );
            drain(&mut bench.tracker);
        }
        spent
    })
}

fn label(encode: bool) -> &'static str {
    if encode {
        "core + encode"
    } else {
        "core only"
    }
}

fn join_into_a_big_room(c: &mut Criterion) {
    let lobby = room("lobby");
    let mut group = c.benchmark_group("join");
    group.sample_size(30);
    let (mut bench, _) = populated(10_000, &lobby, Config::default());
    // The joiner gets a 10 001-user snapshot and 10 000 others get one shared event.
    for encode in [false, true] {
        let name = format!("into a 10k-member room ({})", label(encode));
        group.bench_function(name, |b| bench_joins(b, &mut bench, &lobby, None, encode));
    }
    group.finish();
}

fn join_into_list_views(c: &mut Criterion) {
    // Issue 14: every member and the joiner hold a list view of 20. The joiner comes last
    // in `joinedAt` order, so it enters no member's window: its cost is its own 21-user
    // snapshot plus finding its rank, and must not grow with the room. (The members learn
    // the new count at the room's next flush, once per interval, not per join.)
    let lobby = room("lobby");
    let view = Some(View::List(20));
    let mut group = c.benchmark_group("join, every member with a list view of 20");
    group.sample_size(30);
    for members in [1_000usize, 10_000, 100_000] {
        let (mut bench, _) = populated_with_view(members, &lobby, Config::default(), view);
        for encode in [false, true] {
            let name = format!("into {}k members ({})", members / 1000, label(encode));
            group.bench_function(name, |b| bench_joins(b, &mut bench, &lobby, view, encode));
        }
        // What `GET /api/rooms/{room}?limit=20` asks of the room's shard: the first 20
        // users and the numbers, however many members there are.
        let name = format!("rooms API: a page of 20 of {}k members", members / 1000);
        group.bench_function(name, |b| {
            b.iter(|| black_box(bench.tracker.room_page("lobby", 20)))
        });
    }
    group.finish();
}

fn cursor_interval(c: &mut Criterion) {
    let board = room("board");
    let config = Config {
        heartbeat_timeout: Duration::from_secs(1_000_000),
        ..Config::default()
    };
    let interval = config.cursor_interval;
    let mut group = c.benchmark_group("cursor interval, 1000 members");
    for movers in [100usize, 1000] {
        let (mut bench, conns) = populated(1000, &board, config.clone());
        // Entries delivered per interval: each mover reaches the 999 others.
        group.throughput(Throughput::Elements((movers * 999) as u64));
        for encode in [false, true] {
            let name = format!(
                "{movers} movers ({})",
                if encode { "core + encode" } else { "core only" }
            );
            group.bench_function(name, |b| {
                let mut step = 0.0;
                b.iter(|| {
                    step += 1.0;
                    for &conn in &conns[..movers] {
                        bench.tracker.handle(
                            Input::Cursor {
                                conn,
                                room: board.clone(),
                                x: step,
                                y: step,
                                visible: true,
                                reference: None,
                            },
                            bench.now,
                        );
                    }
                    bench.move_clock(interval);
                    bench.tracker.handle_timeout(bench.now);
                    if encode {
                        black_box(drain_encoded(&mut bench.tracker))
                    } else {
                        black_box(drain(&mut bench.tracker))
                    }
                })
            });
        }
    }
    group.finish();
}

fn expiry(c: &mut Criterion) {
    let config = Config {
        reconnect_grace: Duration::from_secs(1),
        heartbeat_timeout: Duration::from_secs(1_000_000),
        ..Config::default()
    };
    let grace = config.reconnect_grace;
    let rooms: Vec<RoomName> = (0..1000).map(|r| room(&format!("room-{r}"))).collect();
    let mut bench = Harness::new(config);
    for i in 0..100_000 {
        join(&mut bench, &rooms[i % rooms.len()]);
        drain(&mut bench.tracker);
    }
    let mut group = c.benchmark_group("expiry, 100k sessions held");
    group.bench_function("timeout with nothing due", |b| {
        b.iter(|| {
            bench.move_clock(Duration::from_micros(1));
            bench.tracker.handle_timeout(bench.now);
            black_box(drain(&mut bench.tracker))
        })
    });
    group.bench_function("timeout where 10 graces end", |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                // Ten sessions drop (untimed); the timed part is their grace ending.
                for i in 0..10 {
                    let conn = join(&mut bench, &rooms[i * 97 % rooms.len()]);
                    bench.tracker.handle(Input::Closed { conn }, bench.now);
                }
                drain(&mut bench.tracker);
                bench.move_clock(grace);
                let started = Instant::now();
                bench.tracker.handle_timeout(bench.now);
                black_box(drain(&mut bench.tracker));
                spent += started.elapsed();
            }
            spent
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    join_into_a_big_room,
    join_into_list_views,
    cursor_interval,
    expiry
);
criterion_main!(benches);
