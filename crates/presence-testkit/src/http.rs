//! Just enough HTTP/1.1 to read the server's endpoints: one `GET` per connection, with
//! `Connection: close`, and the body de-chunked when it comes chunked.

use std::fmt;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a whole exchange may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// An answer: status, headers and the (de-chunked) body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase after the code (`OK`, `Service Unavailable`).
    pub reason: String,
    /// The headers, names as sent, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
}

impl Response {
    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.reason, self.body)
    }
}

/// Why a request got no answer a test can read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting, writing or reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// No whole answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The answer is not HTTP/1.1 as this module reads it.
    #[error("malformed response: {0}")]
    Malformed(String),
}

/// `GET path` from `base` (`http://HOST:PORT` or `HOST:PORT`) with extra request
/// headers, within ten seconds.
pub async fn get(base: &str, path: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
    let authority = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let exchange = async {
        let mut stream = TcpStream::connect(&authority).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, io::Error>(response)
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| HttpError::Timeout(TIMEOUT))??;
    parse(&response)
}

/// Reads a whole response (the server closed the connection after it).
fn parse(response: &[u8]) -> Result<Response, HttpError> {
    let malformed = |what: &str| HttpError::Malformed(what.to_owned());
    let split = find(response, b"\r\n\r\n").ok_or_else(|| malformed("no end of head"))?;
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(malformed(status_line));
    };
    let status = code
        .parse()
        .ok()
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| malformed(status_line))?;
    let reason = parts.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let mut response = Response {
        status,
        reason,
        headers,
        body: String::new(),
    };
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"));
    response.body = if chunked {
        String::from_utf8_lossy(&dechunk(body)?).into_owned()
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    Ok(response)
}

/// The payload of a chunked body (RFC 9112 §7.1), up to its last, empty chunk.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, HttpError> {
    let malformed = |what: &str| HttpError::Malformed(format!("chunked body: {what}"));
    let mut payload = Vec::new();
    loop {
        let line_end = find(body, b"\r\n").ok_or_else(|| malformed("no chunk size line"))?;
        let size_line = String::from_utf8_lossy(&body[..line_end]);
        // A size may carry extensions after `;`; none of ours does, but they are legal.
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| malformed("bad size"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(payload);
        }
        let chunk = body.get(..size).ok_or_else(|| malformed("cut short"))?;
        payload.extend_from_slice(chunk);
        body = body
            .get(size..)
            .and_then(|rest| rest.strip_prefix(b"\r\n"))
            .ok_or_else(|| malformed("no line end after a chunk"))?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_body_is_read_as_is() {
        let response =
            parse(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nnot y").unwrap();
        assert_eq!(response.status, 503);
        assert_eq!(response.reason, "Service Unavailable");
        assert_eq!(response.header("content-length"), Some("5"));
        assert_eq!(response.body, "not y");
    }

    #[test]
    fn a_chunked_body_is_joined() {
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                    4\r\n{\"a\"\r\n6;ext=1\r\n:\"\xc3\xa9\"}\r\n0\r\n\r\n";
        let response = parse(raw).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, "{\"a\":\"é\"}");
    }

    #[test]
    fn a_truncated_chunk_is_an_error_not_a_short_body() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc";
        assert!(matches!(parse(raw), Err(HttpError::Malformed(_))));
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(parse(b"hello"), Err(HttpError::Malformed(_))));
        assert!(matches!(
            parse(b"SMTP 220 hi\r\n\r\n"),
            Err(HttpError::Malformed(_))
        ));
    }
}
