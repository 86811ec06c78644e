//! Just enough HTTP/1.1 to read `/api/rooms` and `/metrics` from the server under test.

use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::BenchError;

/// `GET path` on `http://HOST:PORT`; returns the body of a 200 answer.
pub async fn get(base_url: &str, path: &str) -> Result<String, BenchError> {
    let http_error = |reason: String| BenchError::Http {
        what: format!("GET {path}"),
        reason,
    };
    let authority = base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let exchange = async {
        let mut stream = TcpStream::connect(&authority).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| http_error("no answer within 10 s".to_owned()))?
        .map_err(|error| http_error(error.to_string()))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| http_error("malformed response".to_owned()))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        return Err(http_error(status.to_owned()));
    }
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)
    } else {
        body.to_owned()
    };
    Ok(body)
}

fn unchunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// Every room the server holds and its number of users (`GET /api/rooms`).
pub async fn rooms(base_url: &str) -> Result<Vec<(String, usize)>, BenchError> {
    #[derive(Deserialize)]
    struct Room {
        room: String,
        users: usize,
    }
    #[derive(Deserialize)]
    struct Rooms {
        rooms: Vec<Room>,
    }
    let body = get(base_url, "/api/rooms").await?;
    let rooms: Rooms = serde_json::from_str(&body).map_err(|error| BenchError::Http {
        what: "GET /api/rooms".to_owned(),
        reason: error.to_string(),
    })?;
    Ok(rooms.rooms.into_iter().map(|r| (r.room, r.users)).collect())
}

/// The value of one unlabelled metric (e.g. `presenced_accept_errors_total`).
pub async fn metric(base_url: &str, name: &str) -> Result<Option<f64>, BenchError> {
    let body = get(base_url, "/metrics").await?;
    Ok(metric_value(&body, name))
}

/// Finds `name VALUE` in a Prometheus text exposition.
pub fn metric_value(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let value = rest.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}
