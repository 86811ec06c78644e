//! The task behind a [`Client`](crate::Client): it alone owns the connection. It carries
//! out the handles' commands, applies server messages to the rosters, and when the
//! connection is lost it reconnects with backoff and rejoins every room naming its
//! session, so the server restores it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use presence_protocol::{
    ClientMessage, Join, Leave, Reference, Request, RoomName, ServerMessage, State, Update,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, oneshot};

use crate::backoff::Backoff;
use crate::client::Joined;
use crate::config::{ClientConfig, JoinOptions};
use crate::connection::{ConnectOptions, Connection};
use crate::error::{ConnectError, JoinError, RecvError, SendError};
use crate::event::{Disconnect, Event};
use crate::room::{lock_views, merge, RoomEntry, RoomView, RoomViews};
use crate::roster::Roster;

/// What a [`Client`](crate::Client) handle asks of the task.
#[derive(Debug)]
pub(crate) enum Command {
    Join {
        room: RoomName,
        options: JoinOptions,
        reply: oneshot::Sender<Result<Joined, JoinError>>,
    },
    Send(ClientMessage),
    Leave(RoomName),
    DropConnection,
    Close(oneshot::Sender<()>),
}

/// One connect attempt; it owns what it needs, so the driver can take commands meanwhile.
pub(crate) fn open(
    url: String,
    config: &ClientConfig,
) -> impl Future<Output = Result<Connection, ConnectError>> + 'static {
    let options = ConnectOptions {
        bind: config.bind,
        headers: config.headers.clone(),
        tls: config.tls.clone(),
        ..ConnectOptions::default()
    };
    let timeout = config.connect_timeout;
    async move {
        tokio::time::timeout(timeout, Connection::open(&url, &options))
            .await
            .map_err(|_| ConnectError::Timeout)?
    }
}

/// How serving one connection ended.
enum Outcome {
    /// The connection was lost; reconnect.
    Lost(Disconnect),
    /// Close, or every handle dropped; end the task.
    Stop,
}

/// The task's state: the connection's settings, the rooms it wants to be in, and the
/// channels to the handles.
pub(crate) struct Driver {
    config: ClientConfig,
    url: String,
    join_token: Option<String>,
    backoff: Backoff,
    rng: SmallRng,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<Event>,
    shared: Arc<Mutex<RoomViews>>,
    rooms: HashMap<RoomName, RoomEntry>,
    next_ref: u64,
    /// The caller of [`Client::close`](crate::Client::close), told when the task has finished.
    closed_by: Option<oneshot::Sender<()>>,
}

/// How many queued commands are written before one flush.
const MAX_BATCH: usize = 64;

impl Driver {
    pub(crate) fn new(
        config: ClientConfig,
        url: String,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::Sender<Event>,
        shared: Arc<Mutex<RoomViews>>,
    ) -> Self {
        let rng = match config.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        Driver {
            url,
            join_token: config.join_token(),
            backoff: config.backoff.clone(),
            config,
            commands,
            events,
            shared,
            rooms: HashMap::new(),
            next_ref: 0,
            closed_by: None,
            rng,
        }
    }

    /// Serves `connection`, then each one after it, until [`Client::close`](crate::Client::close)
    /// or until every handle is dropped.
    pub(crate) async fn run(mut self, mut connection: Connection) {
        self.emit(Event::Connected).await;
        loop {
            let outcome = match self.resume(&mut connection).await {
                Ok(()) => self.serve(&mut connection).await,
                Err(reason) => Outcome::Lost(reason),
            };
            match outcome {
                Outcome::Stop => {
                    // A close frame without a leave when the handles were dropped: the
                    // server holds the sessions for its grace, as for any closed socket.
                    let _ = connection.flush().await;
                    let _ = connection.close().await;
                    break;
                }
                Outcome::Lost(reason) => {
                    drop(connection);
                    // The server closes a connection that joins no room within its
                    // heartbeat timeout; reconnecting to join nothing would be closed again.
                    let idle = self.rooms.is_empty()
                        && matches!(
                            reason,
                            Disconnect::ClosedByServer {
                                code: NO_JOIN_CLOSE,
                                ..
                            }
                        );
                    self.emit(Event::Disconnected(reason)).await;
                    if idle && !self.wait_for_a_room().await {
                        break;
                    }
                }
            }
            connection = match self.reconnect().await {
                Some(connection) => connection,
                None => break,
            };
            self.emit(Event::Connected).await;
        }
        self.rooms.clear();
        self.views().clear();
        self.commands.close();
        // Not `emit`: a full event buffer must not keep `close()` from returning; the
        // events then simply end.
        let _ = self.events.try_send(Event::Closed);
        if let Some(done) = self.closed_by.take() {
            let _ = done.send(());
        }
    }

    /// After a (re)connect: rejoin every room, naming its session so the server restores
    /// it, then send what was queued while offline. The server handles one connection's
    /// messages in order, so the update lands after the restore.
    async fn resume(&mut self, connection: &mut Connection) -> Result<(), Disconnect> {
        if self.rooms.is_empty() {
            return Ok(());
        }
        let rooms: Vec<RoomName> = self.rooms.keys().cloned().collect();
        for room in rooms {
            let reference = self.take_ref();
            let Some(entry) = self.rooms.get_mut(&room) else {
                continue;
            };
            entry.join_ref = reference;
            let join = join_frame(entry.join.clone(), reference);
            // Cloned, not taken: if this connection fails too, the next one sends them.
            let update = entry.offline_update.clone().map(|state| Update {
                room: room.clone(),
                state,
            });
            let cursor = entry.offline_cursor.clone();
            feed(connection, join).await?;
            if let Some(update) = update {
                feed(connection, ClientMessage::Update(update).encode()).await?;
            }
            if let Some(cursor) = cursor {
                feed(connection, ClientMessage::Cursor(cursor).encode()).await?;
            }
        }
        connection.flush().await.map_err(network)?;
        for entry in self.rooms.values_mut() {
            entry.offline_update = None;
            entry.offline_cursor = None;
        }
        Ok(())
    }

    async fn serve(&mut self, connection: &mut Connection) -> Outcome {
        loop {
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(command) = command else { return Outcome::Stop };
                    // Write everything that is queued, then flush once.
                    let mut next = Some(command);
                    let mut written = 0;
                    while let Some(command) = next.take() {
                        match self.online(command, connection).await {
                            Ok(None) => {}
                            Ok(Some(outcome)) => return outcome,
                            Err(reason) => return Outcome::Lost(reason),
                        }
                        written += 1;
                        if written < MAX_BATCH {
                            next = self.commands.try_recv().ok();
                        }
                    }
                    if let Err(error) = connection.flush().await {
                        return Outcome::Lost(network(error));
                    }
                }
                received = connection.recv() => match received {
                    Ok(message) => self.on_message(message).await,
                    Err(RecvError::Closed { code, reason }) => {
                        return Outcome::Lost(Disconnect::ClosedByServer { code, reason });
                    }
                    Err(RecvError::Network(error)) => {
                        return Outcome::Lost(Disconnect::Network(error.to_string()));
                    }
                    // A message type from a newer server, or a stray binary frame: skip it
                    // rather than break a client that is otherwise in sync.
                    Err(RecvError::Decode { .. } | RecvError::Binary) => {}
                },
            }
        }
    }

    /// Carries out one command on a live connection (written, not yet flushed).
    async fn online(
        &mut self,
        command: Command,
        connection: &mut Connection,
    ) -> Result<Option<Outcome>, Disconnect> {
        match command {
            Command::Join {
                room,
                options,
                reply,
            } => {
                let reference = self.take_ref();
                let join = self.want(room, options, reply, reference);
                feed(connection, join_frame(join, reference)).await?;
            }
            Command::Send(message) => {
                if let ClientMessage::Update(update) = &message {
                    if let Some(entry) = self.rooms.get_mut(&update.room) {
                        merge(
                            entry.join.state.get_or_insert_with(State::new),
                            &update.state,
                        );
                    }
                }
                self.apply_own(&message);
                feed(connection, message.encode()).await?;
            }
            Command::Leave(room) => {
                self.forget(&room);
                let leave = ClientMessage::Leave(Leave {
                    room: Some(room),
                    reason: None,
                });
                feed(connection, leave.encode()).await?;
            }
            Command::DropConnection => return Ok(Some(Outcome::Lost(Disconnect::Dropped))),
            Command::Close(done) => {
                if !self.rooms.is_empty() {
                    let leave = ClientMessage::Leave(Leave {
                        room: None,
                        reason: None,
                    });
                    // The close goes ahead even if this fails: the server would then hold
                    // the sessions for its grace, which is the best left to do.
                    let _ = feed(connection, leave.encode()).await;
                }
                self.closed_by = Some(done);
                return Ok(Some(Outcome::Stop));
            }
        }
        Ok(None)
    }

    /// Carries out one command while disconnected. Returns `false` to stop the task.
    fn offline(&mut self, command: Command) -> bool {
        match command {
            Command::Join {
                room,
                options,
                reply,
            } => {
                let reference = self.take_ref();
                self.want(room, options, reply, reference);
            }
            Command::Send(ClientMessage::Update(update)) => {
                self.apply_own(&ClientMessage::Update(update.clone()));
                if let Some(entry) = self.rooms.get_mut(&update.room) {
                    merge(
                        entry.join.state.get_or_insert_with(State::new),
                        &update.state,
                    );
                    merge(
                        entry.offline_update.get_or_insert_with(State::new),
                        &update.state,
                    );
                }
            }
            Command::Send(ClientMessage::Cursor(cursor)) => {
                self.apply_own(&ClientMessage::Cursor(cursor.clone()));
                if let Some(entry) = self.rooms.get_mut(&cursor.room) {
                    entry.offline_cursor = Some(cursor);
                }
            }
            // A heartbeat is moot (the rejoin is a sign of life), and other raw messages
            // would only meet `not_joined` on a fresh connection.
            Command::Send(_) | Command::DropConnection => {}
            // The server holds the session until its grace ends; without a connection
            // there is no quicker way to let go of it.
            Command::Leave(room) => self.forget(&room),
            Command::Close(done) => {
                self.closed_by = Some(done);
                return false;
            }
        }
        true
    }

    /// Waits out the backoff and reconnects, serving commands meanwhile. `None`: stop.
    /// Offline and in no room: waits until a join is asked for. False when the client is
    /// closed or dropped meanwhile.
    async fn wait_for_a_room(&mut self) -> bool {
        while self.rooms.is_empty() {
            let Some(command) = self.commands.recv().await else {
                return false;
            };
            if !self.offline(command) {
                return false;
            }
        }
        true
    }

    async fn reconnect(&mut self) -> Option<Connection> {
        let mut last_error = None;
        loop {
            let delay = self.backoff.next_delay(&mut self.rng);
            let attempt = self.backoff.attempt();
            self.emit(Event::Reconnecting {
                attempt,
                delay,
                last_error: last_error.take(),
            })
            .await;

            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    command = self.commands.recv() => {
                        let command = command?;
                        if !self.offline(command) {
                            return None;
                        }
                    }
                }
            }

            let opening = open(self.url.clone(), &self.config);
            tokio::pin!(opening);
            let result = loop {
                tokio::select! {
                    result = &mut opening => break result,
                    command = self.commands.recv() => {
                        let command = command?;
                        if !self.offline(command) {
                            return None;
                        }
                    }
                }
            };
            match result {
                Ok(connection) => {
                    self.backoff.reset();
                    return Some(connection);
                }
                Err(error) => last_error = Some(error.to_string()),
            }
        }
    }

    /// Records that the client wants to be in `room`; returns the join to send.
    fn want(
        &mut self,
        room: RoomName,
        options: JoinOptions,
        reply: oneshot::Sender<Result<Joined, JoinError>>,
        reference: u64,
    ) -> Join {
        let token = self.join_token.clone();
        self.rooms
            .entry(room.clone())
            .or_insert_with(|| RoomEntry::new(room, token, reference))
            .want(options, reply, reference)
    }

    /// Shows this client's own update or cursor in its roster (see [`RoomView::apply_own`]).
    fn apply_own(&self, message: &ClientMessage) {
        let Some(room) = message.room() else {
            return;
        };
        if let Some(view) = self.views().get_mut(room) {
            view.apply_own(message);
        }
    }

    fn forget(&mut self, room: &RoomName) {
        // Dropping the waiters makes their `join` calls return `Cancelled`.
        self.rooms.remove(room);
        self.views().remove(room);
    }

    async fn on_message(&mut self, message: ServerMessage) {
        match &message {
            ServerMessage::CurrentUsers {
                room, users, me, ..
            } => {
                if let Some(entry) = self.rooms.get_mut(room) {
                    // From now on a rejoin names this session, as this user: the server
                    // restores only for the same user id (an `anon-…` one included).
                    entry.join.user.id = Some(me.id.clone());
                    entry.join.user.session_id = Some(me.session_id.clone());
                    let waiters = std::mem::take(&mut entry.waiters);
                    // The roster first: a caller woken by `join` reads it at once.
                    let mut roster = Roster::default();
                    roster.apply(&message);
                    let view = RoomView {
                        roster,
                        me: me.clone(),
                    };
                    self.views().insert(room.clone(), view);
                    for waiter in waiters {
                        let _ = waiter.send(Ok(Joined {
                            me: me.clone(),
                            users: users.clone(),
                        }));
                    }
                }
            }
            ServerMessage::Error {
                code,
                message: text,
                reference: Some(Reference::Number(number)),
            } => {
                let refused = number.as_u64().and_then(|reference| {
                    self.rooms
                        .iter()
                        .find(|(_, entry)| entry.join_ref == reference)
                        .map(|(room, _)| room.clone())
                });
                if let Some(room) = refused {
                    if let Some(entry) = self.rooms.remove(&room) {
                        for waiter in entry.waiters {
                            let _ = waiter.send(Err(JoinError::Refused {
                                code: *code,
                                message: text.clone(),
                            }));
                        }
                    }
                    self.views().remove(&room);
                }
            }
            ServerMessage::Error { .. } | ServerMessage::Restored { .. } => {}
            ServerMessage::UserJoined { room, .. }
            | ServerMessage::UserLeft { room, .. }
            | ServerMessage::UserUpdated { room, .. }
            | ServerMessage::Cursors { room, .. }
            | ServerMessage::Diff { room, .. }
            | ServerMessage::Count { room, .. } => {
                if let Some(view) = self.views().get_mut(room) {
                    view.roster.apply(&message);
                }
            }
        }
        self.emit(Event::Message(message)).await;
    }

    async fn emit(&self, event: Event) {
        // A caller that dropped `Events` only reads rosters: that is fine.
        let _ = self.events.send(event).await;
    }

    fn take_ref(&mut self) -> u64 {
        self.next_ref += 1;
        self.next_ref
    }

    fn views(&self) -> MutexGuard<'_, RoomViews> {
        lock_views(&self.shared)
    }
}

/// The close code of a connection that joined no room within the server's heartbeat timeout.
const NO_JOIN_CLOSE: u16 = 1008;

async fn feed(connection: &mut Connection, text: String) -> Result<(), Disconnect> {
    connection.feed_text(text).await.map_err(network)
}

fn network(error: SendError) -> Disconnect {
    Disconnect::Network(error.to_string())
}

/// A join with a numeric `ref`, so a `presence:error` it causes names the room it
/// refused (see `on_message`).
fn join_frame(join: Join, reference: u64) -> String {
    Request {
        message: ClientMessage::Join(join),
        reference: Some(Reference::Number(reference.into())),
    }
    .encode()
}
