//! The deadline queue: expiry work proportional to what comes due, never a scan.
//!
//! Entries are not removed when they become moot (a restored session, a connection that
//! spoke again); [`crate::Tracker`] checks each popped entry against the current state and
//! drops or re-arms it. That keeps every state change O(1) and every tick O(due · log n).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use presence_protocol::RoomName;

use crate::fact::NodeId;
use crate::input::ConnId;
use crate::session::SessionKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    /// A detached session's grace may have ended.
    GraceEnd(SessionKey),
    /// A connection may have been silent for the whole heartbeat timeout.
    Silence { conn: ConnId, epoch: u64 },
    /// A room has cursor moves or roster changes waiting for its interval.
    Flush(RoomName),
    /// Another node may have been silent for the whole node TTL.
    NodeSilence { node: NodeId, epoch: u64 },
    /// A node TTL after the channel came back: read every served room again, now trusting
    /// absences, as every live node has written its records again by then.
    Reload,
}

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    at: Instant,
    seq: u64,
    timer: Timer,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl Timers {
    pub(crate) fn push(&mut self, at: Instant, timer: Timer) {
        // The sequence number keeps equal deadlines in arrival order, so runs replay alike.
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            timer,
        }));
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(entry)| entry.at)
    }

    /// The earliest entry due at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse(entry)) if entry.at <= now => self.heap.pop().map(|Reverse(e)| e.timer),
            _ => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops the entries `live` says are moot and gives their memory back.
    pub(crate) fn retain(&mut self, mut live: impl FnMut(&Timer) -> bool) {
        self.heap.retain(|Reverse(entry)| live(&entry.timer));
        self.heap.shrink_to_fit();
    }
}
