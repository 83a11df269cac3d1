//! Loopback addresses for tests.

use std::net::TcpListener;

/// A TCP port on 127.0.0.1 that nothing listens on right now: connections to it are refused,
/// or a server started by the test can bind it. The port was free when this returned; another
/// process could take it later, which on a test machine's loopback is rare enough.
pub fn unused_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding an ephemeral loopback port")
        .port()
}

#[cfg(test)]
mod tests {
    use super::unused_loopback_port;

    #[test]
    fn nothing_listens_on_the_port() {
        // Other tests' servers run beside this one and may take the port in between (as the
        // function's doc says), so one of a few ports must be refused, not every one.
        let refused = (0..5).any(|_| {
            let port = unused_loopback_port();
            assert_ne!(port, 0);
            std::net::TcpStream::connect(("127.0.0.1", port))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
        });
        assert!(refused, "every port said to be unused had a listener");
    }
}
