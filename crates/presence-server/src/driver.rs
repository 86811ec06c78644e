//! Shard drivers: each task owns one [`Tracker`] for the rooms that hash to it.
//!
//! Inputs arrive on an `mpsc`, effects leave as encoded frames pushed into connection
//! outboxes, and one timer tracks the tracker's next deadline (quinn's `drive_timer`).
//! There is no mutex around the core and no single task that every room must pass through.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use presence_core::{ConnId, Effect, Input, InterestStats, RoomPage, SessionRecord, Tracker};
use presence_protocol::{CursorFrames, ErrorCode, RoomName, ServerMessage};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::clock;
use crate::cluster::{ClusterPorts, Interest, Outgoing};
use crate::metrics::{Metrics, ShardGauges};
use crate::outbox::{Condemned, Frame, Outbox};
use crate::webhook::Webhooks;

/// The most queued inputs a shard handles per wake-up before it looks at its timers.
const INPUT_BATCH: usize = 64;

/// How often a shard gives back memory a burst left behind.
const COMPACTION_PERIOD: std::time::Duration = std::time::Duration::from_secs(10);

/// What a shard is asked to do.
pub enum ShardMessage {
    /// An input from a connection, with its outbox and when it arrived.
    Input {
        /// What happened.
        input: Input,
        /// The connection's outbox.
        outbox: Arc<Outbox>,
        /// For the fan-out latency histogram.
        received_at: Instant,
    },
    /// Every room of this shard and its user count.
    ListRooms(oneshot::Sender<Vec<(RoomName, usize, usize)>>),
    /// One room's users.
    /// The first `usize` users of a room, with its numbers.
    Roster(RoomName, usize, oneshot::Sender<Option<RoomPage>>),
    /// An input that no connection sent: another node's fact, the backend's state.
    Remote(Input),
    /// Every session this shard owns (to write the records again, or the state file).
    LocalRecords(oneshot::Sender<Vec<SessionRecord>>),
    /// Sessions a previous run wrote down, to hold for their clients (`--state-file`).
    HoldRestored(Vec<SessionRecord>),
}

/// The sending side of every shard, and the rule that maps rooms to them.
#[derive(Clone)]
pub struct Shards {
    senders: Arc<[mpsc::Sender<ShardMessage>]>,
}

impl Shards {
    /// Starts `count` shard drivers.
    pub fn start(
        count: usize,
        config: presence_core::Config,
        max_rooms: u32,
        metrics: Arc<Metrics>,
        cluster: Option<ClusterPorts>,
        webhooks: Option<Webhooks>,
    ) -> Self {
        let senders: Vec<_> = (0..count.max(1))
            .map(|index| {
                let (tx, rx) = mpsc::channel(4096);
                let driver = Driver {
                    index,
                    tracker: Tracker::new(config.clone()),
                    outboxes: HashMap::new(),
                    max_rooms,
                    joining: None,
                    gauges: metrics.shard(index),
                    metrics: metrics.clone(),
                    cluster: cluster.clone(),
                    webhooks: webhooks.clone(),
                    waiting: HashMap::new(),
                    counted: InterestStats::default(),
                };
                tokio::spawn(driver.run(rx));
                tx
            })
            .collect();
        Shards {
            senders: senders.into(),
        }
    }

    /// The shard that owns `room`. A fixed hash, so the mapping never changes in a run.
    pub fn for_room(&self, room: &RoomName) -> &mpsc::Sender<ShardMessage> {
        &self.senders[self.index_for_room(room)]
    }

    /// The index of the shard that owns `room`.
    pub fn index_for_room(&self, room: &RoomName) -> usize {
        let mut hasher = std::hash::DefaultHasher::new();
        room.as_str().hash(&mut hasher);
        (hasher.finish() % self.senders.len() as u64) as usize
    }

    /// How many shards there are.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// Whether there are no shards (never, once started).
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// Sends to shard `index`; a stopped shard (shutdown) is ignored.
    pub async fn send_to(&self, index: usize, message: ShardMessage) {
        if let Some(sender) = self.senders.get(index) {
            let _ = sender.send(message).await;
        }
    }

    /// Every session the shards own, shard after shard.
    pub async fn local_records(&self) -> Vec<SessionRecord> {
        let mut records = Vec::new();
        for index in 0..self.len() {
            let (reply, answer) = oneshot::channel();
            self.send_to(index, ShardMessage::LocalRecords(reply)).await;
            if let Ok(part) = answer.await {
                records.extend(part);
            }
        }
        records
    }

    /// Hands each shard the written-down sessions of its rooms to hold.
    pub async fn hold_restored(&self, sessions: Vec<SessionRecord>) {
        let mut parts: Vec<Vec<SessionRecord>> = vec![Vec::new(); self.len()];
        for record in sessions {
            parts[self.index_for_room(&record.room)].push(record);
        }
        for (index, part) in parts.into_iter().enumerate() {
            if !part.is_empty() {
                self.send_to(index, ShardMessage::HoldRestored(part)).await;
            }
        }
    }

    /// Every shard, for inputs that concern all of a connection's rooms.
    pub fn all(&self) -> impl Iterator<Item = &mpsc::Sender<ShardMessage>> {
        self.senders.iter()
    }
}

struct Driver {
    /// This shard's place among the shards.
    index: usize,
    tracker: Tracker,
    /// Outboxes of connections holding sessions here, with how many rooms each holds.
    outboxes: HashMap<ConnId, (Arc<Outbox>, u32)>,
    max_rooms: u32,
    /// The connection whose join is being handled with a reserved room slot: its
    /// `Subscribed` takes the slot instead of counting a room again.
    joining: Option<ConnId>,
    gauges: Arc<ShardGauges>,
    metrics: Arc<Metrics>,
    /// Where facts for other nodes, and rooms to follow, go (cluster mode).
    cluster: Option<ClusterPorts>,
    /// Where room events go for the app's backend (`--webhook-url`).
    webhooks: Option<Webhooks>,
    /// Joins waiting for their room's records (cluster mode), with their outboxes: each
    /// keeps the room slot it reserved until its join is answered.
    waiting: HashMap<RoomName, Vec<(ConnId, Arc<Outbox>)>>,
    /// The core's interest counts already added to the metrics.
    counted: InterestStats,
}

impl Driver {
    async fn run(mut self, mut inbox: mpsc::Receiver<ShardMessage>) {
        // Bursts (a storm, an hour of churn) leave capacity and stale deadlines behind;
        // give them back every few seconds rather than holding the peak forever.
        let mut compaction = tokio::time::interval(COMPACTION_PERIOD);
        compaction.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // One timer, re-armed only when the next deadline moves (not one per message), and
        // inputs taken in batches of whatever has queued up since the last wake-up.
        let timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(timer);
        let mut armed_for: Option<Instant> = None;
        let mut batch = Vec::with_capacity(INPUT_BATCH);
        loop {
            let deadline = self.tracker.next_deadline().map(Instant::from_std);
            if deadline != armed_for {
                if let Some(at) = deadline {
                    timer.as_mut().reset(at);
                }
                armed_for = deadline;
                crate::pacing::shard_deadline(self.index, deadline.map(Instant::into_std));
            }
            tokio::select! {
                received = inbox.recv_many(&mut batch, INPUT_BATCH) => {
                    if received == 0 {
                        break;
                    }
                    for message in batch.drain(..) {
                        self.on_message(message);
                    }
                }
                () = &mut timer, if armed_for.is_some() => {
                    armed_for = None;
                    crate::pacing::shard_deadline(self.index, None);
                    self.tracker.handle_timeout(clock::now());
                    self.carry_out(None, None);
                }
                _ = compaction.tick() => {
                    self.tracker.compact();
                    if self.outboxes.capacity() > 64 && self.outboxes.len() * 4 < self.outboxes.capacity() {
                        self.outboxes.shrink_to_fit();
                    }
                }
            }
            let stats = self.tracker.stats();
            let interest = stats.interest;
            self.metrics
                .cluster
                .facts_applied
                .inc_by(interest.applied_facts - self.counted.applied_facts);
            self.metrics
                .cluster
                .facts_ignored
                .inc_by(interest.ignored_facts - self.counted.ignored_facts);
            self.counted = interest;
            self.gauges
                .rooms
                .store(stats.rooms as u64, Ordering::Relaxed);
            self.gauges
                .users
                .store(stats.users as u64, Ordering::Relaxed);
            self.gauges
                .sessions
                .store(stats.sessions as u64, Ordering::Relaxed);
        }
    }

    fn on_message(&mut self, message: ShardMessage) {
        match message {
            ShardMessage::Input {
                input,
                outbox,
                received_at,
            } => {
                let Some(conn) = input.conn() else { return };
                if let Input::Join {
                    request, reference, ..
                } = &input
                {
                    // The one place `--max-rooms-per-connection` is enforced. The outbox
                    // counts the connection's rooms over every shard, and a join into a new
                    // room reserves its slot atomically before the core sees it.
                    let already_in = self.tracker.holds(conn, &request.room)
                        || self.is_waiting(conn, &request.room);
                    if !already_in {
                        if !outbox.reserve_room(self.max_rooms) {
                            let message = ServerMessage::error(
                                ErrorCode::TooManyRooms,
                                format!("a connection may be in at most {} rooms", self.max_rooms),
                                reference.clone(),
                            );
                            outbox.reply(&message, &self.metrics);
                            return;
                        }
                        self.joining = Some(conn);
                    }
                }
                let input_room = match &input {
                    Input::Join { request, .. } => Some(request.room.clone()),
                    _ => None,
                };
                let resync = matches!(input, Input::Resync { .. });
                let now = clock::now();
                self.tracker.handle(input, now);
                if self
                    .tracker
                    .next_deadline()
                    .is_some_and(|d| d <= now.instant)
                {
                    self.tracker.handle_timeout(now);
                }
                let waits_for = match input_room {
                    Some(room) if self.tracker.is_loading(&room) => Some(room),
                    _ => None,
                };
                self.carry_out(Some((conn, &outbox)), Some(received_at));
                if resync {
                    // This shard's snapshots are queued: its roster events count again.
                    outbox.snapshot_sent(self.index);
                }
                if let Some(joining) = self.joining.take() {
                    match waits_for {
                        // Answered once the room's records are read; the slot stays taken.
                        Some(room) => self
                            .waiting
                            .entry(room)
                            .or_default()
                            .push((joining, outbox.clone())),
                        // The join was refused (a full room, a bad state): no room was taken.
                        None => outbox.release_room(),
                    }
                }
            }
            ShardMessage::ListRooms(reply) => {
                let rooms = self
                    .tracker
                    .rooms()
                    .map(|(room, users, spectators)| (room.clone(), users, spectators))
                    .collect();
                let _ = reply.send(rooms);
            }
            ShardMessage::Roster(room, limit, reply) => {
                let _ = reply.send(self.tracker.room_page(room.as_str(), limit));
            }
            ShardMessage::Remote(input) => {
                let loaded = match &input {
                    Input::Records { room, .. } if self.tracker.is_loading(room) => {
                        Some(room.clone())
                    }
                    _ => None,
                };
                let now = clock::now();
                self.tracker.handle(input, now);
                if self
                    .tracker
                    .next_deadline()
                    .is_some_and(|d| d <= now.instant)
                {
                    self.tracker.handle_timeout(now);
                }
                self.carry_out(None, None);
                if let Some(room) = loaded {
                    // Joins that did not take their slot (refused, or their connection
                    // went meanwhile) give it back.
                    for (_, outbox) in self.waiting.remove(&room).unwrap_or_default() {
                        outbox.release_room();
                    }
                }
            }
            ShardMessage::LocalRecords(reply) => {
                let _ = reply.send(self.tracker.local_records());
            }
            ShardMessage::HoldRestored(sessions) => {
                self.tracker.hold_restored(sessions, clock::now());
            }
        }
    }

    /// Encodes each message once and shares the bytes among its recipients.
    fn carry_out(&mut self, current: Option<(ConnId, &Arc<Outbox>)>, received_at: Option<Instant>) {
        while let Some(effect) = self.tracker.poll_effect() {
            match effect {
                Effect::Send { conn, message } => {
                    if let Some(outbox) = self.outbox_of(conn, current) {
                        outbox.reply(&message, &self.metrics);
                    }
                }
                Effect::Broadcast {
                    recipients,
                    message,
                } => {
                    // Roster events only: cursor frames come as `Effect::Cursors`.
                    let kind = message.type_name();
                    let text = Utf8Bytes::from(message.encode());
                    let mut delivered = 0;
                    for conn in recipients {
                        let Some((outbox, _)) = self.outboxes.get(&conn) else {
                            continue;
                        };
                        delivered += 1;
                        outbox.push_counted(Frame::Roster(text.clone(), self.index), &self.metrics);
                    }
                    self.metrics.sent(kind, delivered);
                    if let Some(at) = received_at {
                        self.metrics
                            .fanout_latency
                            .observe(at.elapsed().as_secs_f64());
                    }
                }
                Effect::Cursors {
                    room,
                    cursors,
                    recipients,
                } => {
                    // One encoding for the room; a mover's frame is the same bytes written
                    // around its own entry.
                    let (text, holes) = CursorFrames::new(&room, &cursors).into_parts();
                    let text = Utf8Bytes::from(text);
                    let mut delivered = 0;
                    for (conn, own) in recipients {
                        let Some((outbox, _)) = self.outboxes.get(&conn) else {
                            continue;
                        };
                        let frame = Frame::Cursors {
                            text: text.clone(),
                            hole: own.and_then(|index| holes.get(index).cloned()),
                        };
                        delivered += 1;
                        outbox.push_counted(frame, &self.metrics);
                    }
                    self.metrics.sent("presence:cursors", delivered);
                }
                Effect::Subscribed { conn, room } => {
                    if let Some(outbox) = self.outbox_of(conn, current) {
                        outbox.mark_joined();
                        let waited = self.stop_waiting(conn, &room);
                        if self.joining == Some(conn) {
                            // The slot the join reserved is now a room held.
                            self.joining = None;
                        } else if !waited {
                            outbox.add_room();
                        }
                        self.outboxes.entry(conn).or_insert((outbox, 0)).1 += 1;
                    }
                }
                Effect::Unsubscribed { conn, .. } => {
                    if let Some((outbox, count)) = self.outboxes.get_mut(&conn) {
                        outbox.release_room();
                        *count = count.saturating_sub(1);
                        if *count == 0 {
                            self.outboxes.remove(&conn);
                        }
                    }
                }
                Effect::Publish(fact) => {
                    let queued = self
                        .cluster
                        .as_ref()
                        .is_some_and(|ports| ports.outgoing.try_send(Outgoing::Fact(fact)).is_ok());
                    if !queued {
                        // The backend is far behind; reading and rewriting records heal it.
                        self.metrics.cluster.facts_dropped.inc();
                    }
                }
                Effect::Watch { room } => self.ask(Interest::Watch(room)),
                Effect::Unwatch { room } => {
                    if let Some(ports) = &self.cluster {
                        // Behind the facts already queued, among them its last session's end.
                        if ports
                            .outgoing
                            .try_send(Outgoing::Vacate(room.clone()))
                            .is_err()
                        {
                            // Not refreshed any more, the records expire on their own.
                            self.metrics.cluster.facts_dropped.inc();
                        }
                    }
                    self.ask(Interest::Unwatch(room));
                }
                Effect::Load { room, authority } => self.ask(Interest::Load(room, authority)),
                Effect::Notify(event) => {
                    if let Some(webhooks) = &self.webhooks {
                        webhooks.notify(event);
                    }
                }
                Effect::Close { conn, .. } => {
                    if let Some(outbox) = self.outbox_of(conn, current) {
                        outbox.condemn(Condemned::Silent);
                    }
                }
            }
        }
    }

    /// The outbox of `conn`: the one that came with the input being handled, the one
    /// registered when the connection subscribed to a room here, or the one of a join
    /// waiting for its room's records.
    fn outbox_of(
        &self,
        conn: ConnId,
        current: Option<(ConnId, &Arc<Outbox>)>,
    ) -> Option<Arc<Outbox>> {
        match current {
            Some((c, outbox)) if c == conn => Some(outbox.clone()),
            _ => self
                .outboxes
                .get(&conn)
                .map(|(o, _)| o.clone())
                .or_else(|| {
                    self.waiting
                        .values()
                        .flatten()
                        .find(|(c, _)| *c == conn)
                        .map(|(_, outbox)| outbox.clone())
                }),
        }
    }

    /// Whether a join of `conn` into `room` waits for the room's records.
    fn is_waiting(&self, conn: ConnId, room: &RoomName) -> bool {
        self.waiting
            .get(room)
            .is_some_and(|joins| joins.iter().any(|(c, _)| *c == conn))
    }

    /// The waiting join of `conn` into `room` got its session; true if there was one.
    fn stop_waiting(&mut self, conn: ConnId, room: &RoomName) -> bool {
        let Some(joins) = self.waiting.get_mut(room) else {
            return false;
        };
        let before = joins.len();
        joins.retain(|(c, _)| *c != conn);
        joins.len() < before
    }

    /// Hands a room request to the cluster's subscriber.
    fn ask(&self, interest: Interest) {
        if let Some(ports) = &self.cluster {
            // Unbounded: a join waits on the answer, so the request must never be lost.
            let _ = ports.interest.send(interest);
        }
    }
}
