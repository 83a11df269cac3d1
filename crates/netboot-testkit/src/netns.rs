//! Network namespaces for tests that need a real Ethernet link (broadcast, several
//! interfaces, impairments) without touching the host's network. Needs root and iproute2:
//! check with `is_root() && have_tool("ip", "iproute2")` from [`crate::process`] first.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Name of the veth end inside the server namespace.
pub const SERVER_DEV: &str = "veth-s";
/// Name of the veth end inside the client namespace.
pub const CLIENT_DEV: &str = "veth-c";

/// A server and a client namespace joined by a veth pair on one `/24` (server `.1` on
/// [`SERVER_DEV`], client `.2` on [`CLIENT_DEV`], loopback up in both). Both namespaces, and
/// with them the veth pair, are deleted on drop, also when the test panics.
#[derive(Debug)]
pub struct NamespacePair {
    /// Namespace the server runs in.
    pub server: String,
    /// Namespace the clients run in.
    pub client: String,
    /// The server's address on the veth link.
    pub server_ip: Ipv4Addr,
    /// The client's address on the veth link.
    pub client_ip: Ipv4Addr,
}

impl NamespacePair {
    /// Creates `<tag>-s-<pid>` and `<tag>-c-<pid>` (so parallel tests and concurrent runs
    /// never share one) on the network `<subnet>.0/24`. Panics, after removing whatever it
    /// created, when a step fails.
    pub fn create(tag: &str, subnet: [u8; 3]) -> Self {
        let id = std::process::id();
        Self::try_create(&format!("{tag}-s-{id}"), &format!("{tag}-c-{id}"), subnet)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates namespaces `server` and `client` on the network `<subnet>.0/24`, replacing any
    /// of the same names an interrupted run left behind. On error, whatever was created is
    /// removed again and the failing step is named.
    pub fn try_create(server: &str, client: &str, subnet: [u8; 3]) -> Result<Self, String> {
        let [a, b, c] = subnet;
        // The guard exists before the first namespace does, so a failing step still cleans up.
        let pair = Self {
            server: server.to_owned(),
            client: client.to_owned(),
            server_ip: Ipv4Addr::new(a, b, c, 1),
            client_ip: Ipv4Addr::new(a, b, c, 2),
        };
        pair.remove();
        try_ip(&["netns", "add", &pair.server])?;
        try_ip(&["netns", "add", &pair.client])?;
        // Both ends are created directly inside their namespaces, so the device names never
        // meet in the root namespace and parallel tests can reuse them.
        try_ip(&[
            "link",
            "add",
            SERVER_DEV,
            "netns",
            &pair.server,
            "type",
            "veth",
            "peer",
            "name",
            CLIENT_DEV,
            "netns",
            &pair.client,
        ])?;
        for (namespace, dev, address) in [
            (&pair.server, SERVER_DEV, pair.server_ip),
            (&pair.client, CLIENT_DEV, pair.client_ip),
        ] {
            let address = format!("{address}/24");
            try_ip(&["-n", namespace, "addr", "add", &address, "dev", dev])?;
            try_ip(&["-n", namespace, "link", "set", dev, "up"])?;
            try_ip(&["-n", namespace, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }

    fn remove(&self) {
        for namespace in [&self.server, &self.client] {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for NamespacePair {
    fn drop(&mut self) {
        self.remove();
    }
}

/// `program` run inside `namespace` through `ip netns exec` (which execs it, so the child is
/// the program itself and killing the child kills the program).
pub fn command(namespace: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", namespace]).arg(program);
    command
}

/// Runs `ip <args>` (with `-n <namespace>` among them to act inside one), panicking with its
/// error output when it fails.
pub fn ip(args: &[&str]) {
    try_ip(args).unwrap_or_else(|e| panic!("{e}"));
}

/// Runs `ip <args>`; on failure the error names the command and carries its error output.
pub fn try_ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip (iproute2): {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

/// Moves the calling thread into network namespace `name`; sockets it creates afterwards
/// live there, wherever they are used from. Panics when that fails.
pub fn enter(name: &str) {
    try_enter(name).unwrap_or_else(|e| panic!("{e}"));
}

/// Moves the calling thread into network namespace `name` (threads it spawns later start
/// there too).
pub fn try_enter(name: &str) -> Result<(), String> {
    let file = std::fs::File::open(format!("/run/netns/{name}"))
        .map_err(|e| format!("opening namespace {name}: {e}"))?;
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("entering namespace {name}: {e}"))
}

/// Runs `f` on a new thread that has entered network namespace `name`, and returns its
/// result; the calling thread stays where it is.
pub fn run_in<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let name = name.to_owned();
    std::thread::spawn(move || {
        enter(&name);
        f()
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{have_tool, is_root};

    #[test]
    fn the_pair_is_linked_and_removed_on_drop() {
        if !(is_root() && have_tool("ip", "iproute2")) {
            return;
        }
        let pair = NamespacePair::create("ntk", [10, 197, 3]);
        let server_ip = pair.server_ip;
        // Sockets stay in the namespace they were made in, whichever thread uses them.
        let server = run_in(&pair.server, move || {
            std::net::UdpSocket::bind((server_ip, 0)).unwrap()
        });
        let client = run_in(&pair.client, || std::net::UdpSocket::bind("0.0.0.0:0").unwrap());
        client
            .send_to(b"over the veth", server.local_addr().unwrap())
            .unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0; 32];
        let (len, from) = server.recv_from(&mut buf).expect("the datagram crossed the link");
        assert_eq!(&buf[..len], b"over the veth");
        assert_eq!(from.ip(), pair.client_ip);
        let shown = command(&pair.server, "ip")
            .args(["-br", "addr", "show", SERVER_DEV])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&shown.stdout).contains("10.197.3.1/24"));
        let names = pair.server.clone();
        drop(pair);
        let listed = Command::new("ip").args(["netns", "list"]).output().unwrap();
        assert!(
            !String::from_utf8_lossy(&listed.stdout).contains(&names),
            "namespace removed"
        );
    }
}
