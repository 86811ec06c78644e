//! The [`Client`] handle: what an application holds. It queues commands for the task
//! that owns the connection (`task.rs`) and reads the rosters that task keeps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use presence_protocol::{ClientMessage, Cursor, RoomName, SelfInfo, State, Update, User};
use tokio::sync::{mpsc, oneshot};

use crate::config::{ClientConfig, JoinOptions};
use crate::error::{ConnectError, JoinError, SendError};
use crate::event::Events;
use crate::room::{lock_views, RoomViews};
use crate::task::{self, Command, Driver};
use crate::url::websocket_url;

/// The server's answer to a successful join: the `presence:currentUsers` snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// Who this client is in the room, and the session it will restore.
    pub me: SelfInfo,
    /// Everyone in the room, this client's user included.
    pub users: Vec<User>,
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
    shared: Arc<Mutex<RoomViews>>,
}

impl Client {
    /// Connects once (so a wrong URL or a refused upgrade is reported here), then starts
    /// the client's task. Later connection losses are retried forever, with backoff.
    pub async fn connect(config: ClientConfig) -> Result<(Client, Events), ConnectError> {
        let url = websocket_url(&config.url, config.url_token())?;
        let connection = task::open(url.clone(), &config).await?;

        let (commands, command_receiver) = mpsc::unbounded_channel();
        let (event_sender, event_receiver) = mpsc::channel(config.event_capacity.max(1));
        let shared = Arc::new(Mutex::new(HashMap::new()));
        let driver = Driver::new(
            config,
            url,
            command_receiver,
            event_sender,
            Arc::clone(&shared),
        );
        tokio::spawn(driver.run(connection));
        Ok((Client { commands, shared }, Events::new(event_receiver)))
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

    /// How many users `room` lists and how many spectators watch it, as the server last
    /// said (a list view holds fewer users than the count).
    pub fn counts(&self, room: &RoomName) -> Option<(u64, u64)> {
        self.views()
            .get(room)
            .map(|view| (view.roster.count(), view.roster.spectators()))
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
    /// Returns when the task has finished; [`Event::Closed`](crate::Event::Closed) is the last event (unless
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

    fn views(&self) -> MutexGuard<'_, RoomViews> {
        lock_views(&self.shared)
    }
}
