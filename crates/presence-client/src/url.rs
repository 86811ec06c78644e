//! Turning what the user typed (`ws://host:port/ws`, or the server's own
//! `listening on http://ADDR` address) into the URL the handshake requests.

use crate::error::ConnectError;

/// The WebSocket URL for `base`, with `token` appended as `?token=` when given.
///
/// `ws://` and `wss://` are used as they are; `http://` becomes `ws://` and `https://`
/// becomes `wss://`, so the address the server prints when it starts can be pasted
/// unchanged. A URL without a path gets `/ws`, the only WebSocket endpoint of the
/// contract.
pub fn websocket_url(base: &str, token: Option<&str>) -> Result<String, ConnectError> {
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| ConnectError::InvalidUrl(format!("{base:?} has no scheme")))?;
    let secure = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => false,
        "wss" | "https" => true,
        other => return Err(ConnectError::UnsupportedScheme(other.to_owned())),
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(ConnectError::InvalidUrl(format!("{base:?} has no host")));
    }
    let mut url = String::with_capacity(base.len() + 8 + token.map_or(0, |t| t.len() + 7));
    url.push_str(if secure { "wss://" } else { "ws://" });
    match rest.find(['/', '?']) {
        // The authority alone, or the authority followed by a query: the path is `/ws`.
        None => {
            url.push_str(rest);
            url.push_str("/ws");
        }
        Some(at) if rest[at..].starts_with('?') => {
            url.push_str(&rest[..at]);
            url.push_str("/ws");
            url.push_str(&rest[at..]);
        }
        Some(_) => url.push_str(rest),
    }
    if let Some(token) = token {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("token=");
        percent_encode_into(token, &mut url);
    }
    Ok(url)
}

/// Percent-encodes everything but RFC 3986's unreserved characters (a JWT is made of
/// those alone, so in practice the token passes through unchanged).
fn percent_encode_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_listening_address_becomes_its_websocket_endpoint() {
        assert_eq!(
            websocket_url("http://127.0.0.1:4000", None).unwrap(),
            "ws://127.0.0.1:4000/ws"
        );
        assert_eq!(
            websocket_url("ws://127.0.0.1:4000/", None).unwrap(),
            "ws://127.0.0.1:4000/"
        );
        assert_eq!(
            websocket_url("ws://[::1]:4000/ws", None).unwrap(),
            "ws://[::1]:4000/ws"
        );
        assert_eq!(
            websocket_url("ws://h:1?x=1", None).unwrap(),
            "ws://h:1/ws?x=1"
        );
    }

    #[test]
    fn the_token_is_appended_as_a_query_parameter() {
        assert_eq!(
            websocket_url("ws://h:1/ws", Some("a.b-c_d")).unwrap(),
            "ws://h:1/ws?token=a.b-c_d"
        );
        assert_eq!(
            websocket_url("ws://h:1/ws?x=1", Some("a b&c=é")).unwrap(),
            "ws://h:1/ws?x=1&token=a%20b%26c%3D%C3%A9"
        );
    }

    #[test]
    fn tls_urls_stay_tls_and_garbage_is_refused() {
        assert_eq!(websocket_url("wss://h/ws", None).unwrap(), "wss://h/ws");
        assert_eq!(
            websocket_url("https://127.0.0.1:8443", None).unwrap(),
            "wss://127.0.0.1:8443/ws"
        );
        assert!(matches!(
            websocket_url("ftp://h/ws", None),
            Err(ConnectError::UnsupportedScheme(s)) if s == "ftp"
        ));
        assert!(matches!(
            websocket_url("h:1/ws", None),
            Err(ConnectError::InvalidUrl(_))
        ));
        assert!(matches!(
            websocket_url("ws://", None),
            Err(ConnectError::InvalidUrl(_))
        ));
    }
}
