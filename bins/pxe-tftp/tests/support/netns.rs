//! Two network namespaces joined by a veth pair, created by a test and always removed, plus
//! nftables rules that impair the link between them.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Name of the veth end inside the server namespace.
pub const SERVER_DEV: &str = "tftp-s";
/// Name of the veth end inside the client namespace.
pub const CLIENT_DEV: &str = "tftp-c";

/// Whether namespace tests can run here: root, `ip` and `nft`. Anything missing skips the
/// test with a message, or fails it when `CI` is set.
pub fn can_run() -> bool {
    super::is_root() && super::have_tool("ip", "iproute2") && super::have_tool("nft", "nftables")
}

/// A server and a client namespace joined by a veth pair on `10.198.<subnet>.0/24`
/// (server `.1`, client `.2`). Both namespaces, and with them the veth pair and every rule in
/// them, are deleted on drop, also when the test panics.
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
    /// Creates the namespaces, named after `tag` and this process so parallel tests and
    /// concurrent runs never share one.
    pub fn create(tag: &str, subnet: u8) -> Self {
        let id = std::process::id();
        // The guard exists before the first namespace does, so a failing step still cleans up.
        let pair = Self {
            server: format!("tftp-{tag}-s-{id}"),
            client: format!("tftp-{tag}-c-{id}"),
            server_ip: Ipv4Addr::new(10, 198, subnet, 1),
            client_ip: Ipv4Addr::new(10, 198, subnet, 2),
        };
        ip(&["netns", "add", &pair.server]);
        ip(&["netns", "add", &pair.client]);
        // Both ends are created directly inside their namespaces, so the device names never
        // meet in the root namespace and parallel tests can reuse them.
        ip(&[
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
        ]);
        for (namespace, dev, address) in [
            (&pair.server, SERVER_DEV, pair.server_ip),
            (&pair.client, CLIENT_DEV, pair.client_ip),
        ] {
            let address = format!("{address}/24");
            ip(&["-n", namespace, "addr", "add", &address, "dev", dev]);
            ip(&["-n", namespace, "link", "set", dev, "up"]);
            ip(&["-n", namespace, "link", "set", "lo", "up"]);
        }
        pair
    }

    /// `program` run inside `namespace` through `ip netns exec` (which execs it, so the child
    /// is the program itself and killing the child kills the program).
    pub fn command(namespace: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", namespace]).arg(program);
        command
    }

    /// Loads an nftables script into `namespace`.
    pub fn nft_load(namespace: &str, script: &str) {
        let mut child = Self::command(namespace, "nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("running nft");
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "nft rejected:\n{script}");
    }

    /// Packets counted so far by the named nftables counter `counter` of `table` (family
    /// `inet`) in `namespace`.
    pub fn nft_counter(namespace: &str, table: &str, counter: &str) -> u64 {
        let output = Self::command(namespace, "nft")
            .args(["list", "counter", "inet", table, counter])
            .output()
            .expect("running nft");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "nft list counter {counter} failed");
        text.split_whitespace()
            .skip_while(|word| *word != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no packet count for {counter} in:\n{text}"))
    }
}

impl Drop for NamespacePair {
    fn drop(&mut self) {
        for namespace in [&self.server, &self.client] {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Moves the calling thread into network namespace `name`; sockets it creates afterwards
/// live there, wherever they are used from.
pub fn enter(name: &str) {
    let file = std::fs::File::open(format!("/run/netns/{name}"))
        .unwrap_or_else(|e| panic!("opening namespace {name}: {e}"));
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|e| panic!("entering namespace {name}: {e}"));
}

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}
