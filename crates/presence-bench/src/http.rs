//! What the bench reads over HTTP from the server under test: `/api/rooms` and
//! `/metrics`, through `presence-testkit`'s GET.

use serde::Deserialize;

use crate::BenchError;

/// `GET path` on `http://HOST:PORT`; returns the body of a 200 answer.
pub async fn get(base_url: &str, path: &str) -> Result<String, BenchError> {
    let http_error = |reason: String| BenchError::Http {
        what: format!("GET {path}"),
        reason,
    };
    let response = presence_testkit::http::get(base_url, path, &[])
        .await
        .map_err(|error| http_error(error.to_string()))?;
    if response.status != 200 {
        return Err(http_error(format!(
            "HTTP/1.1 {} {}",
            response.status, response.reason
        )));
    }
    Ok(response.body)
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
