//! Criterion benches for the hot paths of `presence-core`'s `Tracker`, without sockets:
//! a join into a 10 000-member room, one cursor interval of a 1 000-member room, and
//! expiry work when 100 000 sessions are held and only a few expire.
//!
//! Run with `cargo bench -p presence-bench --bench core`. Time is virtual (an
//! `Instant` the bench advances), as in the core's own tests.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use presence_core::{Config, ConnId, Effect, Input, JoinRequest, Now, Tracker};
use presence_protocol::{CursorFrames, RoomName, SessionId, UserId};

struct Bench {
    tracker: Tracker,
    now: Now,
    next_conn: u64,
}

impl Bench {
    fn new(config: Config) -> Self {
        let now = Now {
            instant: Instant::now(),
            unix_ms: 1_700_000_000_000,
        };
        Bench {
            tracker: Tracker::new(config),
            now,
            next_conn: 1,
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now.instant += by;
        self.now.unix_ms += by.as_millis() as u64;
    }

    /// Joins a new connection as a new user; returns the connection.
    fn join(&mut self, room: &RoomName) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let n = conn.0;
        let request = JoinRequest {
            room: room.clone(),
            user_id: UserId::generated("u-", n),
            name: Some(format!("User {n}")),
            session_id: SessionId::generated("s-", n),
            state: None,
            batch: false,
        };
        self.tracker.handle(
            Input::Join {
                conn,
                request,
                reference: None,
            },
            self.now,
        );
        conn
    }

    /// Carries out every pending effect the cheapest way: counts them.
    fn drain(&mut self) -> usize {
        let mut count = 0;
        while let Some(effect) = self.tracker.poll_effect() {
            count += black_box(&effect).recipients();
        }
        count
    }

    /// Carries out every pending effect as the server does: encodes each message once.
    fn drain_encoded(&mut self) -> usize {
        let mut bytes = 0;
        while let Some(effect) = self.tracker.poll_effect() {
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

fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("valid room")
}

fn populated(members: usize, room_name: &RoomName, config: Config) -> (Bench, Vec<ConnId>) {
    let mut bench = Bench::new(config);
    let conns = (0..members)
        .map(|_| {
            let conn = bench.join(room_name);
            bench.drain();
            conn
        })
        .collect();
    (bench, conns)
}

fn join_into_a_big_room(c: &mut Criterion) {
    let lobby = room("lobby");
    let mut group = c.benchmark_group("join");
    group.sample_size(30);
    let (mut bench, _) = populated(10_000, &lobby, Config::default());
    // The joiner gets a 10 001-user snapshot and 10 000 others get one shared event.
    group.bench_function("into a 10k-member room (core only)", |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                let started = Instant::now();
                let conn = bench.join(&lobby);
                black_box(bench.drain());
                spent += started.elapsed();
                bench.tracker.handle(
                    Input::Leave {
                        conn,
                        room: None,
                        reference: None,
                    },
                    bench.now,
                );
                bench.drain();
            }
            spent
        })
    });
    group.bench_function("into a 10k-member room (core + encode)", |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                let started = Instant::now();
                let conn = bench.join(&lobby);
                black_box(bench.drain_encoded());
                spent += started.elapsed();
                bench.tracker.handle(
                    Input::Leave {
                        conn,
                        room: None,
                        reference: None,
                    },
                    bench.now,
                );
                bench.drain();
            }
            spent
        })
    });
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
                    bench.advance(interval);
                    bench.tracker.handle_timeout(bench.now);
                    if encode {
                        black_box(bench.drain_encoded())
                    } else {
                        black_box(bench.drain())
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
    let mut bench = Bench::new(config);
    for i in 0..100_000 {
        bench.join(&rooms[i % rooms.len()]);
        bench.drain();
    }
    let mut group = c.benchmark_group("expiry, 100k sessions held");
    group.bench_function("timeout with nothing due", |b| {
        b.iter(|| {
            bench.advance(Duration::from_micros(1));
            bench.tracker.handle_timeout(bench.now);
            black_box(bench.drain())
        })
    });
    group.bench_function("timeout where 10 graces end", |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                // Ten sessions drop (untimed); the timed part is their grace ending.
                for i in 0..10 {
                    let conn = bench.join(&rooms[i * 97 % rooms.len()]);
                    bench.tracker.handle(Input::Closed { conn }, bench.now);
                }
                bench.drain();
                bench.advance(grace);
                let started = Instant::now();
                bench.tracker.handle_timeout(bench.now);
                black_box(bench.drain());
                spent += started.elapsed();
            }
            spent
        })
    });
    group.finish();
}

criterion_group!(benches, join_into_a_big_room, cursor_interval, expiry);
criterion_main!(benches);
