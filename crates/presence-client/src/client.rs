//! The high-level client: one task per client that owns the connection, keeps the
//! rosters, reconnects with backoff and restores the sessions it held.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use presence_protocol::{
    ClientMessage, Cursor, CursorPosition, Join, JoinUser, Leave, Reference, Request, RoomName,
    SelfInfo, ServerMessage, SessionId, State, Update, User, UserId, AWAY_KEY,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, oneshot};

use crate::backoff::Backoff;
use crate::connection::{ConnectOptions, Connection};
use crate::error::{ConnectError, JoinError, RecvError, SendError};
use crate::roster::Roster;
use crate::url::websocket_url;

/// Where the client puts its token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenPlacement {
    /// In every `presence:join` (the default: it stays out of proxy access logs).
    #[default]
    Join,
    /// As `?token=` on the `/ws` URL.
    Query,
    /// Both.
    Both,
}

/// How a [`Client`] connects and reconnects.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://host:port/ws`, or the `http://ADDR` the server prints when it starts.
    pub url: String,
    /// A JWT, for servers with authentication.
    pub token: Option<String>,
    /// Where [`ClientConfig::token`] goes.
    pub token_placement: TokenPlacement,
    /// The local address to connect from (e.g. `127.0.0.2:0`).
    pub bind: Option<SocketAddr>,
    /// Extra headers on every upgrade request, e.g. an `Origin` the server allows.
    pub headers: Vec<(String, String)>,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// A limit on each connect attempt (TCP connect plus handshake).
    pub connect_timeout: Duration,
    /// How many events may wait in [`Events`]. When it is full the client stops reading
    /// the socket until the caller catches up; drop [`Events`] if you only read rosters.
    pub event_capacity: usize,
    /// Seeds the backoff jitter (from the OS when `None`), so tests can replay delays.
    pub seed: Option<u64>,
}

impl ClientConfig {
    /// Defaults for `url`: no token, 250 ms to 30 s backoff, 10 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            token: None,
            token_placement: TokenPlacement::default(),
            bind: None,
            headers: Vec::new(),
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            event_capacity: 1024,
            seed: None,
        }
    }

    /// Sets the token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
}

/// What to join a room as. Everything is optional; see `presence:join` in the contract.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinOptions {
    /// The user id (ignored by a server with authentication, which takes the token's `sub`).
    pub user_id: Option<UserId>,
    /// The display name.
    pub name: Option<String>,
    /// The initial custom state.
    pub state: Option<State>,
    /// A session to restore, e.g. one saved from an earlier process. The client fills
    /// this in by itself after the first join, to restore after reconnects.
    pub session_id: Option<SessionId>,
    /// Receive `presence:diff` batches instead of single roster events.
    pub batch: bool,
}

impl JoinOptions {
    /// Join as `user_id`, shown as `name`.
    pub fn user(user_id: UserId, name: impl Into<String>) -> Self {
        JoinOptions {
            user_id: Some(user_id),
            name: Some(name.into()),
            ..JoinOptions::default()
        }
    }
}

/// The server's answer to a successful join: the `presence:currentUsers` snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// Who this client is in the room, and the session it will restore.
    pub me: SelfInfo,
    /// Everyone in the room, this client's user included.
    pub users: Vec<User>,
}

/// Something the client observed, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A message from the server, already applied to the client's rosters.
    Message(ServerMessage),
    /// A (re)connection succeeded; restoring joins for the held rooms are on their way.
    Connected,
    /// The connection was lost; the client will reconnect.
    Disconnected(Disconnect),
    /// The client waits `delay` before reconnect attempt `attempt` (from 1).
    Reconnecting {
        /// Which attempt since the connection was lost.
        attempt: u32,
        /// How long the client waits before trying.
        delay: Duration,
        /// Why the previous attempt failed (`None` before the first).
        last_error: Option<String>,
    },
    /// The client was closed with [`Client::close`], or every [`Client`] handle was
    /// dropped. No more events follow.
    Closed,
}

/// Why a connection was lost.
#[derive(Debug, Clone, PartialEq)]
pub enum Disconnect {
    /// The server sent a close frame: 1012 when it restarts, 1013 when this client
    /// could not keep up, 1008 or 1009 when it broke a limit.
    ClosedByServer {
        /// The WebSocket close code.
        code: u16,
        /// The close reason, often empty.
        reason: String,
    },
    /// The connection broke without a close frame (reset, EOF, I/O error).
    Network(String),
    /// [`Client::drop_connection`] was called.
    Dropped,
}

/// The events of one [`Client`]: `recv` them, or use them as a [`Stream`].
#[derive(Debug)]
pub struct Events {
    receiver: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event; `None` after [`Event::Closed`].
    pub async fn recv(&mut self) -> Option<Event> {
        self.receiver.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.receiver.try_recv().ok()
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut().receiver.poll_recv(cx)
    }
}

/// A presence client that stays connected: it reconnects with backoff, restores the
/// sessions of the rooms it had joined, and keeps a roster per room.
///
/// Cheap to clone (a channel sender and an `Arc`). The connection is owned by one task;
/// the methods below queue work for it and return at once, except [`Client::join`],
/// which waits for the server's answer, and [`Client::close`].
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use presence_client::{Client, ClientConfig, JoinOptions};
/// use presence_protocol::{RoomName, UserId};
///
/// let (client, mut events) = Client::connect(ClientConfig::new("ws://127.0.0.1:8080/ws")).await?;
/// let room = RoomName::new("lobby")?;
/// let joined = client.join(&room, JoinOptions::user(UserId::new("alice")?, "Alice")).await?;
/// println!("{} users here", joined.users.len());
/// client.move_cursor(&room, 0.5, 0.5, true)?;
/// while let Some(event) = events.recv().await {
///     println!("{event:?}; roster now {:?}", client.roster(&room));
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Mutex<HashMap<RoomName, RoomView>>>,
}

/// What callers can read without asking the task: one joined room.
#[derive(Debug)]
struct RoomView {
    roster: Roster,
    me: SelfInfo,
}

#[derive(Debug)]
enum Command {
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

impl Client {
    /// Connects once (so a wrong URL or a refused upgrade is reported here), then starts
    /// the client's task. Later connection losses are retried forever, with backoff.
    pub async fn connect(config: ClientConfig) -> Result<(Client, Events), ConnectError> {
        let url_token = match config.token_placement {
            TokenPlacement::Query | TokenPlacement::Both => config.token.as_deref(),
            TokenPlacement::Join => None,
        };
        let url = websocket_url(&config.url, url_token)?;
        let connection = open(url.clone(), &config).await?;

        let (commands, command_receiver) = mpsc::unbounded_channel();
        let (event_sender, event_receiver) = mpsc::channel(config.event_capacity.max(1));
        let shared = Arc::new(Mutex::new(HashMap::new()));
        let rng = match config.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        let driver = Driver {
            url,
            join_token: match config.token_placement {
                TokenPlacement::Join | TokenPlacement::Both => config.token.clone(),
                TokenPlacement::Query => None,
            },
            backoff: config.backoff.clone(),
            config,
            commands: command_receiver,
            events: event_sender,
            shared: Arc::clone(&shared),
            rooms: HashMap::new(),
            next_ref: 0,
            closed_by: None,
            rng,
        };
        tokio::spawn(driver.run(connection));
        Ok((
            Client { commands, shared },
            Events {
                receiver: event_receiver,
            },
        ))
    }

    /// Joins `room` and waits for the server's `presence:currentUsers`.
    ///
    /// If the connection is down, the join goes out when it is back. Joining a room
    /// again updates the name and merges the state, as the server does. Wrap it in a
    /// `tokio::time::timeout` if the caller cannot wait for a reconnect.
    pub async fn join(&self, room: &RoomName, options: JoinOptions) -> Result<Joined, JoinError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Join {
                room: room.clone(),
                options,
                reply,
            })
            .map_err(|_| JoinError::Cancelled)?;
        answer.await.unwrap_or(Err(JoinError::Cancelled))
    }

    /// Moves this user's cursor in `room`. While disconnected only the latest position
    /// is kept, and sent after the session is restored.
    pub fn move_cursor(
        &self,
        room: &RoomName,
        x: f64,
        y: f64,
        visible: bool,
    ) -> Result<(), SendError> {
        self.send(ClientMessage::Cursor(Cursor {
            room: room.clone(),
            x,
            y,
            visible,
        }))
    }

    /// Shallow-merges `state` into this user's state in `room` (a `null` value deletes
    /// the key). Updates made while disconnected are merged and sent after the restore.
    pub fn update(&self, room: &RoomName, state: State) -> Result<(), SendError> {
        self.send(ClientMessage::Update(Update {
            room: room.clone(),
            state,
        }))
    }

    /// Leaves `room` at once and forgets its roster and session.
    pub fn leave(&self, room: &RoomName) -> Result<(), SendError> {
        self.command(Command::Leave(room.clone()))
    }

    /// Sends a `presence:heartbeat`. Rarely needed: the client answers the server's
    /// WebSocket pings, which count as signs of life too.
    pub fn heartbeat(&self) -> Result<(), SendError> {
        self.send(ClientMessage::Heartbeat)
    }

    /// Sends any client message as it is (no local bookkeeping besides the roster's room
    /// list; prefer the typed methods).
    pub fn send(&self, message: ClientMessage) -> Result<(), SendError> {
        self.command(Command::Send(message))
    }

    /// The roster of `room` as this client last heard it (empty when not joined).
    pub fn roster(&self, room: &RoomName) -> Vec<User> {
        self.views()
            .get(room)
            .map(|view| view.roster.users())
            .unwrap_or_default()
    }

    /// Who this client is in `room` (user id and the session it restores), once joined.
    pub fn me(&self, room: &RoomName) -> Option<SelfInfo> {
        self.views().get(room).map(|view| view.me.clone())
    }

    /// The rooms this client has joined (that the server confirmed).
    pub fn rooms(&self) -> Vec<RoomName> {
        self.views().keys().cloned().collect()
    }

    /// Drops the connection without a close frame or a leave, as a network failure
    /// would; the client then reconnects and restores. Useful after a network change,
    /// and in tests.
    pub fn drop_connection(&self) -> Result<(), SendError> {
        self.command(Command::DropConnection)
    }

    /// Leaves every room, closes the connection and stops the client (no reconnect).
    /// Returns when the task has finished; [`Event::Closed`] is the last event (unless
    /// the event buffer was full: then the events just end).
    ///
    /// Dropping every [`Client`] handle instead closes without leaving: the server then
    /// holds the sessions for its reconnect grace.
    pub async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Close(done)).is_ok() {
            let _ = finished.await;
        }
    }

    /// Whether the client's task has stopped.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    fn command(&self, command: Command) -> Result<(), SendError> {
        self.commands.send(command).map_err(|_| SendError::Closed)
    }

    fn views(&self) -> MutexGuard<'_, HashMap<RoomName, RoomView>> {
        // The maps are replaced wholesale or by single upserts, so a panic elsewhere
        // cannot leave them half-written: a poisoned lock is still safe to read.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connect attempt; it owns what it needs, so the driver can take commands meanwhile.
fn open(
    url: String,
    config: &ClientConfig,
) -> impl Future<Output = Result<Connection, ConnectError>> + 'static {
    let options = ConnectOptions {
        bind: config.bind,
        headers: config.headers.clone(),
        ..ConnectOptions::default()
    };
    let timeout = config.connect_timeout;
    async move {
        tokio::time::timeout(timeout, Connection::open(&url, &options))
            .await
            .map_err(|_| ConnectError::Timeout)?
    }
}

/// A room the client wants to be in, with what it takes to get back in.
#[derive(Debug)]
struct RoomEntry {
    /// The join to (re)send. After `currentUsers` it carries the server's user id and
    /// session id, so a rejoin restores; its `state` follows every update, so a rejoin
    /// after the grace ran out starts from the latest state instead of the first one.
    join: Join,
    /// The `ref` of the last join sent, to match a `presence:error` to this room.
    join_ref: u64,
    /// Callers of [`Client::join`] waiting for `currentUsers`.
    waiters: Vec<oneshot::Sender<Result<Joined, JoinError>>>,
    /// Updates made while disconnected, merged; sent after the rejoin.
    offline_update: Option<State>,
    /// The latest cursor position set while disconnected.
    offline_cursor: Option<Cursor>,
}

enum Outcome {
    /// The connection was lost; reconnect.
    Lost(Disconnect),
    /// Close, or every handle dropped; end the task.
    Stop,
}

struct Driver {
    config: ClientConfig,
    url: String,
    join_token: Option<String>,
    backoff: Backoff,
    rng: SmallRng,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<Event>,
    shared: Arc<Mutex<HashMap<RoomName, RoomView>>>,
    rooms: HashMap<RoomName, RoomEntry>,
    next_ref: u64,
    /// The caller of [`Client::close`], told when the task has finished.
    closed_by: Option<oneshot::Sender<()>>,
}

/// How many queued commands are written before one flush.
const MAX_BATCH: usize = 64;

impl Driver {
    async fn run(mut self, mut connection: Connection) {
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
                    self.emit(Event::Disconnected(reason)).await;
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
            let join = encode_with_ref(&ClientMessage::Join(entry.join.clone()), reference);
            // Cloned, not taken: if this connection fails too, the next one sends them.
            let update = entry.offline_update.clone().map(|state| Update {
                room: room.clone(),
                state,
            });
            let cursor = entry.offline_cursor.clone();
            feed(connection, join).await?;
            if let Some(update) = update {
                feed(connection, Request::encode(&ClientMessage::Update(update))).await?;
            }
            if let Some(cursor) = cursor {
                feed(connection, Request::encode(&ClientMessage::Cursor(cursor))).await?;
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
                feed(
                    connection,
                    encode_with_ref(&ClientMessage::Join(join), reference),
                )
                .await?;
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
                feed(connection, Request::encode(&message)).await?;
            }
            Command::Leave(room) => {
                self.forget(&room);
                let leave = ClientMessage::Leave(Leave { room: Some(room) });
                feed(connection, Request::encode(&leave)).await?;
            }
            Command::DropConnection => return Ok(Some(Outcome::Lost(Disconnect::Dropped))),
            Command::Close(done) => {
                if !self.rooms.is_empty() {
                    let leave = ClientMessage::Leave(Leave { room: None });
                    // The close goes ahead even if this fails: the server would then hold
                    // the sessions for its grace, which is the best left to do.
                    let _ = feed(connection, Request::encode(&leave)).await;
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
        let entry = self.rooms.entry(room.clone()).or_insert_with(|| RoomEntry {
            join: Join {
                room,
                user: JoinUser::default(),
                state: None,
                token,
                batch: false,
            },
            join_ref: reference,
            waiters: Vec::new(),
            offline_update: None,
            offline_cursor: None,
        });
        let join = &mut entry.join;
        let JoinOptions {
            user_id,
            name,
            state,
            session_id,
            batch,
        } = options;
        if user_id.is_some() && user_id != join.user.id {
            // Another user in the same room: the held session is not theirs to restore.
            join.user.session_id = None;
            join.user.id = user_id;
        }
        if name.is_some() {
            join.user.name = name;
        }
        if session_id.is_some() {
            join.user.session_id = session_id;
        }
        if let Some(state) = state {
            merge(join.state.get_or_insert_with(State::new), &state);
        }
        join.batch = batch;
        entry.join_ref = reference;
        entry.waiters.push(reply);
        // A repeated join carries the whole state too: the server merges it into the
        // same values, and the client needs no second kind of join.
        entry.join.clone()
    }

    /// Applies this client's own update or cursor to its own user in the roster: the
    /// server never sends a user's changes back to the connection that made them.
    /// `away` is left to the server, which shows it only when every session is away.
    fn apply_own(&self, message: &ClientMessage) {
        let mut views = self.views();
        match message {
            ClientMessage::Update(update) => {
                let Some(view) = views.get_mut(&update.room) else {
                    return;
                };
                let me = view.me.id.clone();
                view.roster.edit(me.as_str(), |user| {
                    for (key, value) in &update.state {
                        if key == AWAY_KEY {
                            continue;
                        }
                        if value.is_null() {
                            user.state.remove(key);
                        } else {
                            user.state.insert(key.clone(), value.clone());
                        }
                    }
                });
            }
            ClientMessage::Cursor(cursor) => {
                let Some(view) = views.get_mut(&cursor.room) else {
                    return;
                };
                let me = view.me.id.clone();
                view.roster.edit(me.as_str(), |user| {
                    user.cursor = CursorPosition {
                        x: cursor.x,
                        y: cursor.y,
                        visible: cursor.visible,
                    };
                });
            }
            _ => {}
        }
    }

    fn forget(&mut self, room: &RoomName) {
        // Dropping the waiters makes their `join` calls return `Cancelled`.
        self.rooms.remove(room);
        self.views().remove(room);
    }

    async fn on_message(&mut self, message: ServerMessage) {
        match &message {
            ServerMessage::CurrentUsers { room, users, me } => {
                if let Some(entry) = self.rooms.get_mut(room) {
                    // From now on a rejoin names this session, as this user: the server
                    // restores only for the same user id (an `anon-…` one included).
                    entry.join.user.id = Some(me.id.clone());
                    entry.join.user.session_id = Some(me.session_id.clone());
                    let waiters = std::mem::take(&mut entry.waiters);
                    // The roster first: a caller woken by `join` reads it at once.
                    let view = RoomView {
                        roster: Roster::from_users(users.iter().cloned()),
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
            | ServerMessage::Diff { room, .. } => {
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

    fn views(&self) -> MutexGuard<'_, HashMap<RoomName, RoomView>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn feed(connection: &mut Connection, text: String) -> Result<(), Disconnect> {
    connection.feed_text(text).await.map_err(network)
}

fn network(error: SendError) -> Disconnect {
    Disconnect::Network(error.to_string())
}

/// A `presence:update`'s shallow merge: a `null` deletes the key.
fn merge(into: &mut State, update: &State) {
    for (key, value) in update {
        if value.is_null() {
            into.remove(key);
        } else {
            into.insert(key.clone(), value.clone());
        }
    }
}

/// Encodes `message` with a numeric `ref`, so a `presence:error` it causes names it.
///
/// `Request::encode` writes the message alone; the wire types have no `ref` field on
/// the message itself. Every client message encodes as a JSON object, so the `ref` is
/// spliced in before its closing brace rather than re-serializing through a `Value`.
fn encode_with_ref(message: &ClientMessage, reference: u64) -> String {
    let mut text = Request::encode(message);
    if text.ends_with('}') {
        text.pop();
        text.push_str(",\"ref\":");
        text.push_str(&reference.to_string());
        text.push('}');
    }
    text
}

#[cfg(test)]
mod tests {
    use presence_protocol::decode;

    use super::*;

    #[test]
    fn a_join_carries_its_ref() {
        let join = ClientMessage::Join(Join {
            room: RoomName::new("r").unwrap(),
            user: JoinUser {
                id: Some(UserId::new("u").unwrap()),
                ..JoinUser::default()
            },
            state: None,
            token: None,
            batch: false,
        });
        let request = decode(&encode_with_ref(&join, 42)).unwrap();
        assert_eq!(request.message, join);
        assert_eq!(request.reference, Some(Reference::Number(42.into())));
        let heartbeat = decode(&encode_with_ref(&ClientMessage::Heartbeat, 1)).unwrap();
        assert_eq!(heartbeat.reference, Some(Reference::Number(1.into())));
    }

    #[test]
    fn merging_follows_the_update_rules() {
        let mut state: State = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        merge(
            &mut state,
            &serde_json::from_str(r#"{"b":null,"c":3}"#).unwrap(),
        );
        assert_eq!(
            state,
            serde_json::from_str::<State>(r#"{"a":1,"c":3}"#).unwrap()
        );
    }
}
