//! Why a connection ended: the close code and reason its client is told, and the
//! `reason` label of `presenced_disconnects_total`. Every way out of a connection task is
//! one of these, so no connection ends unexplained and none goes uncounted.

/// One reason a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disconnect {
    /// The client sent a close frame; the server answered it.
    ClientClosed,
    /// The socket ended without a close frame (a killed tab, a lost network, a reset).
    Gone,
    /// The server is shutting down (1012): reconnect and restore elsewhere.
    Shutdown,
    /// The outbox overflowed with roster events: the client reads too slowly (1013).
    TooSlow,
    /// A write blocked for the write timeout: the client stopped reading (1013).
    WriteTimeout,
    /// A write to the socket failed.
    WriteFailed,
    /// No frame, pong or message arrived for the heartbeat timeout (1001).
    HeartbeatTimeout,
    /// The connection joined no room within the heartbeat timeout (1008).
    NoJoin,
    /// Sustained messages beyond the rate limit (1008).
    RateAbuse,
    /// A frame or message over `--max-message-bytes` (1009).
    TooBig,
    /// A text frame that is not UTF-8 (1007).
    InvalidUtf8,
    /// A frame that breaks RFC 6455: unmasked, reserved bits or opcodes, a stray
    /// continuation, a fragmented control frame (1002).
    ProtocolError,
}

impl Disconnect {
    /// Every reason, for registering the metric's labels up front.
    pub const ALL: [Disconnect; 12] = [
        Disconnect::ClientClosed,
        Disconnect::Gone,
        Disconnect::Shutdown,
        Disconnect::TooSlow,
        Disconnect::WriteTimeout,
        Disconnect::WriteFailed,
        Disconnect::HeartbeatTimeout,
        Disconnect::NoJoin,
        Disconnect::RateAbuse,
        Disconnect::TooBig,
        Disconnect::InvalidUtf8,
        Disconnect::ProtocolError,
    ];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Disconnect::ClientClosed => "client_closed",
            Disconnect::Gone => "gone",
            Disconnect::Shutdown => "shutdown",
            Disconnect::TooSlow => "too_slow",
            Disconnect::WriteTimeout => "write_timeout",
            Disconnect::WriteFailed => "write_failed",
            Disconnect::HeartbeatTimeout => "heartbeat_timeout",
            Disconnect::NoJoin => "no_join",
            Disconnect::RateAbuse => "rate_abuse",
            Disconnect::TooBig => "too_big",
            Disconnect::InvalidUtf8 => "invalid_utf8",
            Disconnect::ProtocolError => "protocol_error",
        }
    }

    /// The close frame the server sends, if it sends one: it answers a client's close
    /// with the client's own code, and there is nobody left to tell on a dead socket.
    pub fn close_frame(self) -> Option<(u16, &'static str)> {
        match self {
            Disconnect::ClientClosed | Disconnect::Gone | Disconnect::WriteFailed => None,
            Disconnect::Shutdown => Some((1012, "service restart")),
            Disconnect::TooSlow => Some((1013, "client too slow; reconnect to restore")),
            Disconnect::WriteTimeout => {
                Some((1013, "client stopped reading; reconnect to restore"))
            }
            Disconnect::HeartbeatTimeout => Some((1001, "heartbeat timeout")),
            Disconnect::NoJoin => Some((1008, "no room joined within the heartbeat timeout")),
            Disconnect::RateAbuse => Some((1008, "sustained rate limit abuse")),
            Disconnect::TooBig => Some((1009, "message too big")),
            Disconnect::InvalidUtf8 => Some((1007, "text frame is not valid UTF-8")),
            Disconnect::ProtocolError => Some((1002, "WebSocket protocol violation")),
        }
    }

    /// Whether the client is slow (also counted in `presenced_slow_client_disconnects_total`).
    pub fn is_slow_client(self) -> bool {
        matches!(self, Disconnect::TooSlow | Disconnect::WriteTimeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_label_and_every_close_a_reason() {
        let labels: std::collections::HashSet<_> =
            Disconnect::ALL.iter().map(|d| d.label()).collect();
        assert_eq!(labels.len(), Disconnect::ALL.len());
        for reason in Disconnect::ALL {
            if let Some((code, text)) = reason.close_frame() {
                assert!((1000..5000).contains(&code) && !text.is_empty());
                assert!(text.len() <= 123, "a close reason fits a control frame");
            }
        }
    }
}
