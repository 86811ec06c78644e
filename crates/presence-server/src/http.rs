//! The HTTP surface: the WebSocket upgrade, health, metrics, the rooms API and the demo.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper::upgrade::OnUpgrade;

use crate::listener::Handshake;
use hyper_util::rt::TokioIo;
use presence_core::{ConnId, RoomPage};
use presence_protocol::{RoomName, User};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::assets::{content_type, Demo, Sdk};
use crate::driver::ShardMessage;
use crate::AppState;

/// Every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/rooms", get(list_rooms))
        .route("/api/rooms/{*room}", get(room_roster))
        .route("/", get(|| async { asset::<Demo>("index.html") }))
        .route(
            "/demo/{*path}",
            get(|Path(path): Path<String>| async move { asset::<Demo>(&path) }),
        )
        .route(
            "/sdk/{*path}",
            get(|Path(path): Path<String>| async move {
                // The SDK is public code: an app on any origin may import it from here.
                let mut response = asset::<Sdk>(&path);
                response.headers_mut().insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    header::HeaderValue::from_static("*"),
                );
                response
            }),
        )
        .with_state(state)
}

/// An error answer for the HTTP API: a status and a JSON body saying why.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
        }
        (
            self.status,
            Json(Body {
                error: self.message,
            }),
        )
            .into_response()
    }
}

#[derive(Deserialize)]
struct UpgradeQuery {
    token: Option<String>,
}

async fn upgrade(
    State(state): State<Arc<AppState>>,
    Query(query): Query<UpgradeQuery>,
    mut request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers();
    let allowed = &state.config.allowed_origins;
    if !allowed.is_empty() && !allowed.iter().any(|a| a == "*") {
        // Browsers always send Origin; other clients may not, and CORS-style origin checks
        // exist only to stop other web pages from borrowing a visitor's browser.
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or_default();
            if !allowed.iter().any(|a| a == origin) {
                state.metrics.refused_upgrades.inc();
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("origin {origin} is not allowed"),
                ));
            }
        }
    }
    let accept = websocket_accept(headers)?;
    if request.extensions().get::<OnUpgrade>().is_none() {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded to a WebSocket",
        ));
    }
    let open = state.metrics.connections.get();
    if usize::try_from(open).unwrap_or(0) >= state.config.max_connections {
        state.metrics.refused_upgrades.inc();
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections; try another node",
        ));
    }
    let conn = ConnId(state.next_conn.fetch_add(1, Ordering::Relaxed));
    let config = websocket_config(state.config.max_message_bytes);
    let handshake = request
        .extensions()
        .get::<ConnectInfo<Handshake>>()
        .map(|ConnectInfo(handshake)| handshake.clone());
    let upgraded = hyper::upgrade::on(&mut request);
    let tasks = state.connections.clone();
    // The upgrade is done by hand rather than with axum's `WebSocketUpgrade` so that the
    // connection task owns a tokio-tungstenite stream and can write data frames straight
    // to the socket (see `ws::write_frames`).
    tokio::spawn(tasks.track_future(async move {
        let Ok(upgraded) = upgraded.await else {
            return;
        };
        if let Some(Handshake(Some(guard))) = handshake {
            guard.upgraded();
        }
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        crate::ws::serve(socket, state, conn, query.token).await;
    }));
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))
}

/// How every connection's WebSocket is set up, for `--max-message-bytes` `max`.
pub fn websocket_config(max: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        // The library's 128 KiB default read buffer would cost ~138 KB per idle
        // connection. Client frames are tiny (a cursor move is ~90 bytes): 256 bytes
        // read one or a few per syscall, and a larger frame grows the buffer on demand.
        .read_buffer_size(256)
        // Data frames are written by ws.rs straight to the socket; this buffer only
        // carries pings, pongs and the close, so it stays small.
        .write_buffer_size(crate::ws::CONTROL_BUFFER_BYTES)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Checks a WebSocket opening handshake (RFC 6455 §4.2.1) and returns the
/// `Sec-WebSocket-Accept` value for it.
fn websocket_accept(headers: &HeaderMap) -> Result<String, ApiError> {
    let refuse = |message: &str| Err(ApiError::new(StatusCode::BAD_REQUEST, message));
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|part| part.trim().eq_ignore_ascii_case(token))
    };
    if !has_token(header::CONNECTION, "upgrade") {
        return refuse("Connection header did not include 'upgrade'");
    }
    if !has_token(header::UPGRADE, "websocket") {
        return refuse("`Upgrade` header did not include 'websocket'");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return refuse("`Sec-WebSocket-Version` header did not include '13'");
    }
    match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(key) => Ok(derive_accept_key(key.as_bytes())),
        None => refuse("`Sec-WebSocket-Key` header missing"),
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        "ready\n".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster backend unreachable; serving local rooms only\n",
        )
            .into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

fn check_api_key(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &state.config.api_key else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials)
        .unwrap_or_default();
    if constant_time_eq(given.as_bytes(), key.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API key (Authorization: Bearer <key>)",
        ))
    }
}

/// The credentials of an `Authorization: Bearer …` header. The scheme is matched without
/// regard to case (RFC 7235 §2.1), and any run of spaces may follow it.
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim_matches(' '))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Compare every byte whatever the first mismatch, so timing does not leak the key.
    let mut difference = a.len() ^ b.len();
    for (x, y) in a.iter().zip(b.iter().cycle()) {
        difference |= usize::from(x ^ y);
    }
    difference == 0 && !b.is_empty()
}

#[derive(Serialize)]
struct RoomSummary {
    room: RoomName,
    users: usize,
    spectators: usize,
}

#[derive(Serialize)]
struct RoomList {
    rooms: Vec<RoomSummary>,
}

async fn list_rooms(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<RoomList>, ApiError> {
    check_api_key(&state, &headers)?;
    let mut rooms = Vec::new();
    for shard in state.shards.all() {
        let (reply, answer) = oneshot::channel();
        if shard.send(ShardMessage::ListRooms(reply)).await.is_ok() {
            if let Ok(list) = answer.await {
                rooms.extend(
                    list.into_iter()
                        .map(|(room, users, spectators)| RoomSummary {
                            room,
                            users,
                            spectators,
                        }),
                );
            }
        }
    }
    rooms.sort_by(|a, b| a.room.cmp(&b.room));
    Ok(Json(RoomList { rooms }))
}

#[derive(Serialize)]
struct RoomDetail {
    room: RoomName,
    users: Vec<User>,
    count: usize,
    spectators: usize,
}

#[derive(Deserialize)]
struct RoomQuery {
    /// Only the first `limit` users in `joinedAt` order.
    limit: Option<usize>,
}

async fn room_roster(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(room): Path<String>,
    Query(query): Query<RoomQuery>,
) -> Result<Json<RoomDetail>, ApiError> {
    check_api_key(&state, &headers)?;
    let room =
        RoomName::new(&room).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let limit = query.limit.unwrap_or(usize::MAX);
    let (reply, answer) = oneshot::channel();
    let shard = state.shards.for_room(&room);
    shard
        .send(ShardMessage::Roster(room.clone(), limit, reply))
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
    let page = answer
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
    let page = match (page, &state.records) {
        (Some(page), _) => page,
        // A room this node does not serve: the cluster's records tell who is in it.
        (None, Some(read)) => {
            let found = read(room.clone()).await.map_err(|error| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
            })?;
            presence_core::page_from_records(&found.records, limit)
        }
        // An empty room is a valid answer: presence is "nobody here", not "no such thing".
        (None, None) => RoomPage::default(),
    };
    Ok(Json(RoomDetail {
        room,
        users: page.users,
        count: page.count,
        spectators: page.spectators,
    }))
}

fn asset<E: rust_embed::RustEmbed>(path: &str) -> Response {
    match E::get(path) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            file.data,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn keys_compare_exactly() {
        assert!(constant_time_eq(b"key", b"key"));
        assert!(!constant_time_eq(b"kez", b"key"));
        assert!(!constant_time_eq(b"ke", b"key"));
        assert!(!constant_time_eq(b"keyy", b"key"));
        assert!(!constant_time_eq(b"", b""));
    }
}
