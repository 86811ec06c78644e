//! Free loopback ports for children that cannot be told to pick port 0 themselves.

use std::io;
use std::net::TcpListener;

/// Redis Cluster nodes talk to each other on their port plus this.
pub(crate) const CLUSTER_BUS_OFFSET: u16 = 10_000;

/// A loopback port that was free a moment ago. Another process may take it before the
/// caller binds it, so callers retry with a new one when a start fails.
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A free loopback port whose cluster bus port (`+ 10000`) is free too.
pub(crate) fn free_cluster_port() -> io::Result<u16> {
    // The kernel's ephemeral ports (32768-60999 on Linux) are mostly low enough to have
    // a bus port; a few draws find one.
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let Some(bus) = port.checked_add(CLUSTER_BUS_OFFSET) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        "no free loopback port with a free cluster bus port (+10000)",
    ))
}
