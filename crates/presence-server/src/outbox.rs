//! A connection's bounded queue of encoded frames, filled by shard drivers and drained by
//! the connection's task in one socket write per wake-up.
//!
//! When a client cannot keep up, the queue sheds what loses least: first the oldest cursor
//! frame (a newer one will say where everyone's pointer is), then, when it holds only
//! roster events and replies, every queued roster event at once: the connection is marked
//! behind, and the shards send it a fresh `currentUsers` of each of its rooms, which says
//! everything the dropped events said. Only a queue full of replies (a client that sends
//! and never reads) condemns the connection (1013); a client that reads nothing at all is
//! closed by the write timeout.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use axum::extract::ws::Utf8Bytes;
use presence_protocol::ServerMessage;
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// One encoded frame waiting for the socket.
#[derive(Debug, Clone)]
pub enum Frame {
    /// A reply to this connection (`currentUsers`, `restored`, an error, its own diff):
    /// never dropped.
    Event(Utf8Bytes),
    /// A roster event shared by a room (`userJoined`, `userLeft`, `userUpdated`, a diff,
    /// `presence:count`), from the shard of that index: dropped only when the connection
    /// falls behind, and then made good by a fresh `currentUsers` from that shard.
    Roster(Utf8Bytes, usize),
    /// A `presence:cursors` frame: the oldest goes first when the queue is full.
    Cursors {
        /// The room's frame for this interval, shared by every recipient.
        text: Utf8Bytes,
        /// The recipient's own entry, left out when written (see `CursorFrames::hole`).
        hole: Option<Range<usize>>,
    },
}

impl Frame {
    /// The encoded message as written after its frame header: the bytes before the
    /// hole and after it (empty when there is none).
    pub fn payload(&self) -> (&[u8], &[u8]) {
        match self {
            Frame::Event(text) | Frame::Roster(text, _) => (text.as_str().as_bytes(), &[]),
            Frame::Cursors { text, hole } => {
                let bytes = text.as_str().as_bytes();
                match hole {
                    Some(hole) if hole.start <= hole.end && hole.end <= bytes.len() => {
                        (&bytes[..hole.start], &bytes[hole.end..])
                    }
                    _ => (bytes, &[]),
                }
            }
        }
    }

    /// The payload's length in bytes.
    pub fn payload_len(&self) -> usize {
        let (before, after) = self.payload();
        before.len() + after.len()
    }
}

/// Why the connection must end, once the queue says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condemned {
    /// The client fell so far behind that roster events could not be queued (1013).
    TooSlow,
    /// The core found the connection silent for the heartbeat timeout (1001).
    Silent,
}

/// What became of a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued after dropping the oldest cursor frame.
    DroppedCursors,
    /// Queued after dropping every queued roster event: the connection is behind.
    FellBehind,
    /// Not queued: the fresh snapshot its shard is about to send says it.
    Covered,
    /// Not queued: the connection is condemned.
    Refused,
}

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Frame>,
    condemned: Option<Condemned>,
    /// Roster events were dropped: the connection needs fresh snapshots of its rooms.
    behind: bool,
    /// Shards asked for a fresh snapshot that have not sent it yet: their roster events
    /// until then say nothing it will not.
    awaited: Vec<bool>,
}

/// A connection's outbox, shared between the drivers that push and the task that writes.
/// It also counts the connection's rooms across shards, for `--max-rooms-per-connection`.
#[derive(Debug)]
pub struct Outbox {
    queue: Mutex<Queue>,
    notify: Notify,
    capacity: usize,
    /// Rooms this connection holds a session in, summed over shards, plus joins in flight
    /// that reserved one (see [`Outbox::reserve_room`]).
    rooms: AtomicU32,
    /// Whether the connection ever joined a room (it is closed if it never does).
    joined: AtomicBool,
}

impl Outbox {
    /// An empty outbox for at most `capacity` frames.
    pub fn new(capacity: usize) -> Self {
        Outbox {
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
            capacity: capacity.max(2),
            rooms: AtomicU32::new(0),
            joined: AtomicBool::new(false),
        }
    }

    /// Encodes a message meant for this connection alone (a reply, an error) and queues
    /// it, counting it, its error code and any cursor frame it pushed out in `metrics`.
    pub fn reply(&self, message: &ServerMessage, metrics: &Metrics) {
        if let ServerMessage::Error { code, .. } = message {
            metrics.error(*code);
        }
        metrics.sent(message.type_name(), 1);
        self.push_counted(Frame::Event(Utf8Bytes::from(message.encode())), metrics);
    }

    /// [`Outbox::push`], counting a cursor frame it pushed out in `metrics`.
    pub fn push_counted(&self, frame: Frame, metrics: &Metrics) -> Pushed {
        let pushed = self.push(frame);
        if pushed == Pushed::DroppedCursors {
            metrics.dropped_cursor_batches.inc();
        }
        pushed
    }

    /// Queues a frame and wakes the writer.
    pub fn push(&self, frame: Frame) -> Pushed {
        let outcome = {
            let Ok(mut queue) = self.queue.lock() else {
                return Pushed::Refused;
            };
            if queue.condemned.is_some() {
                return Pushed::Refused;
            }
            if let Frame::Roster(_, shard) = &frame {
                if queue.awaited.get(*shard).copied().unwrap_or(false) {
                    return Pushed::Covered;
                }
            }
            let mut outcome = Pushed::Queued;
            if queue.frames.len() >= self.capacity {
                let oldest_cursor = queue
                    .frames
                    .iter()
                    .position(|f| matches!(f, Frame::Cursors { .. }));
                match (oldest_cursor, &frame) {
                    (Some(index), _) => {
                        queue.frames.remove(index);
                        outcome = Pushed::DroppedCursors;
                    }
                    // Full of roster events: a newer cursor frame is simply not queued.
                    (None, Frame::Cursors { .. }) => return Pushed::DroppedCursors,
                    (None, Frame::Event(_) | Frame::Roster(..)) => {
                        let queued = queue.frames.len();
                        queue.frames.retain(|f| !matches!(f, Frame::Roster(..)));
                        if queue.frames.len() < queued {
                            // What was dropped, a snapshot says again.
                            queue.behind = true;
                            outcome = Pushed::FellBehind;
                        } else {
                            queue.condemned = Some(Condemned::TooSlow);
                            queue.frames.clear();
                            outcome = Pushed::Refused;
                        }
                    }
                }
            }
            if outcome != Pushed::Refused {
                queue.frames.push_back(frame);
            }
            outcome
        };
        self.notify.notify_one();
        outcome
    }

    /// Whether roster events were dropped since the last call: the caller asks for fresh
    /// snapshots of the connection's rooms.
    pub fn take_behind(&self) -> bool {
        self.queue
            .lock()
            .map(|mut queue| std::mem::take(&mut queue.behind))
            .unwrap_or(false)
    }

    /// The connection asked `shards` shards for fresh snapshots: until each has sent its
    /// own ([`Outbox::snapshot_sent`]), that shard's roster events are dropped.
    pub fn await_snapshots(&self, shards: usize) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.awaited = vec![true; shards];
        }
    }

    /// Shard `shard` has queued its fresh snapshots of the connection's rooms.
    pub fn snapshot_sent(&self, shard: usize) {
        if let Ok(mut queue) = self.queue.lock() {
            if let Some(awaited) = queue.awaited.get_mut(shard) {
                *awaited = false;
            }
            if !queue.awaited.contains(&true) {
                queue.awaited = Vec::new();
            }
        }
    }

    /// Asks the writer to close the connection.
    pub fn condemn(&self, why: Condemned) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.condemned.get_or_insert(why);
        }
        self.notify.notify_one();
    }

    /// Waits until something was pushed or the connection was condemned.
    pub async fn wait(&self) {
        self.notify.notified().await;
    }

    /// Takes everything queued, and whether the connection must now close.
    pub fn drain(&self) -> (VecDeque<Frame>, Option<Condemned>) {
        let Ok(mut queue) = self.queue.lock() else {
            return (VecDeque::new(), Some(Condemned::TooSlow));
        };
        // Take the queue's buffer along with its frames: an idle connection then keeps no
        // queue memory at all, and every idle connection pays for what it keeps. The next
        // push allocates afresh, once per burst.
        (std::mem::take(&mut queue.frames), queue.condemned)
    }

    /// Rooms held or reserved, for `--max-rooms-per-connection`.
    pub fn rooms(&self) -> u32 {
        self.rooms.load(Ordering::Relaxed)
    }

    /// Takes a room slot for a join in flight, unless `max` are already held or reserved.
    /// The check and the count are one atomic step, so joins racing on several shards
    /// can never together pass the limit.
    pub fn reserve_room(&self, max: u32) -> bool {
        self.rooms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |rooms| {
                (rooms < max).then_some(rooms + 1)
            })
            .is_ok()
    }

    /// Gives back a reserved slot, or a held room the connection no longer holds.
    pub fn release_room(&self) {
        let _ = self
            .rooms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |rooms| {
                rooms.checked_sub(1)
            });
    }

    /// A room joined without a reservation (a session moved onto this connection).
    pub fn add_room(&self) {
        self.rooms.fetch_add(1, Ordering::AcqRel);
    }

    /// Notes that the connection holds a session somewhere now.
    pub fn mark_joined(&self) {
        self.joined.store(true, Ordering::Relaxed);
    }

    /// Whether the connection ever held a session.
    pub fn has_joined(&self) -> bool {
        self.joined.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> Utf8Bytes {
        Utf8Bytes::from_static(s)
    }

    /// A cursor frame written whole.
    fn cursors(text: Utf8Bytes) -> Frame {
        Frame::Cursors { text, hole: None }
    }

    #[test]
    fn a_cursor_frame_with_a_hole_is_written_around_it() {
        let frame = Frame::Cursors {
            text: text("[a,b,c]"),
            hole: Some(3..5),
        };
        assert_eq!(frame.payload(), (&b"[a,"[..], &b"c]"[..]));
        assert_eq!(frame.payload_len(), 5);
        // A hole that does not fit the text (never made by the driver) leaves it whole.
        let frame = Frame::Cursors {
            text: text("[a]"),
            hole: Some(2..9),
        };
        assert_eq!(frame.payload(), (&b"[a]"[..], &b""[..]));
    }

    #[test]
    fn a_full_outbox_sheds_the_oldest_cursor_frame_first() {
        let outbox = Outbox::new(3);
        assert_eq!(outbox.push(cursors(text("c1"))), Pushed::Queued);
        assert_eq!(outbox.push(Frame::Event(text("e1"))), Pushed::Queued);
        assert_eq!(outbox.push(cursors(text("c2"))), Pushed::Queued);
        assert_eq!(
            outbox.push(Frame::Event(text("e2"))),
            Pushed::DroppedCursors
        );
        let (frames, condemned) = outbox.drain();
        assert_eq!(condemned, None);
        let kept: Vec<&str> = frames
            .iter()
            .map(|f| match f {
                Frame::Event(t) | Frame::Roster(t, _) | Frame::Cursors { text: t, .. } => {
                    t.as_str()
                }
            })
            .collect();
        assert_eq!(kept, ["e1", "c2", "e2"]);
    }

    #[test]
    fn room_slots_are_reserved_atomically_up_to_the_limit() {
        let outbox = std::sync::Arc::new(Outbox::new(4));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let outbox = outbox.clone();
                std::thread::spawn(move || (0..50).filter(|_| outbox.reserve_room(100)).count())
            })
            .collect();
        let reserved: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
        assert_eq!(reserved, 100);
        assert_eq!(outbox.rooms(), 100);
        outbox.release_room();
        assert!(outbox.reserve_room(100));
        assert!(!outbox.reserve_room(100));
        for _ in 0..101 {
            outbox.release_room();
        }
        assert_eq!(outbox.rooms(), 0, "never below zero");
    }

    #[test]
    fn replies_are_never_dropped_silently() {
        let outbox = Outbox::new(2);
        outbox.push(Frame::Event(text("e1")));
        outbox.push(Frame::Event(text("e2")));
        assert_eq!(outbox.push(cursors(text("c"))), Pushed::DroppedCursors);
        assert_eq!(outbox.push(Frame::Event(text("e3"))), Pushed::Refused);
        let (frames, condemned) = outbox.drain();
        assert_eq!(condemned, Some(Condemned::TooSlow));
        assert!(frames.is_empty());
        assert_eq!(outbox.push(Frame::Event(text("e4"))), Pushed::Refused);
    }

    #[test]
    fn a_reader_that_falls_behind_loses_roster_events_and_is_marked_behind() {
        let outbox = Outbox::new(3);
        outbox.push(Frame::Roster(text("joined-1"), 0));
        outbox.push(Frame::Event(text("error")));
        outbox.push(Frame::Roster(text("joined-2"), 0));
        assert!(!outbox.take_behind());
        assert_eq!(
            outbox.push(Frame::Roster(text("left-1"), 0)),
            Pushed::FellBehind
        );
        let (frames, condemned) = outbox.drain();
        assert_eq!(condemned, None, "not closed: caught up instead");
        let texts: Vec<&[u8]> = frames.iter().map(|f| f.payload().0).collect();
        assert_eq!(texts, [b"error".as_slice(), b"left-1".as_slice()]);
        assert!(outbox.take_behind());
        assert!(!outbox.take_behind(), "once per fall");
    }

    #[test]
    fn roster_events_a_coming_snapshot_covers_are_not_queued() {
        let outbox = Outbox::new(8);
        outbox.await_snapshots(2);
        assert_eq!(outbox.push(Frame::Roster(text("a"), 0)), Pushed::Covered);
        assert_eq!(outbox.push(Frame::Roster(text("b"), 1)), Pushed::Covered);
        outbox.push(Frame::Event(text("snapshot-0")));
        outbox.snapshot_sent(0);
        assert_eq!(outbox.push(Frame::Roster(text("c"), 0)), Pushed::Queued);
        assert_eq!(outbox.push(Frame::Roster(text("d"), 1)), Pushed::Covered);
        outbox.snapshot_sent(1);
        assert_eq!(outbox.push(Frame::Roster(text("e"), 1)), Pushed::Queued);
        let (frames, _) = outbox.drain();
        let texts: Vec<&[u8]> = frames.iter().map(|f| f.payload().0).collect();
        assert_eq!(
            texts,
            [b"snapshot-0".as_slice(), b"c".as_slice(), b"e".as_slice()]
        );
    }
}
