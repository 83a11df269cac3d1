//! nftables rules that impair the veth link between the two namespaces of a
//! [`netboot_testkit::netns::NamespacePair`].

use std::io::Write;
use std::process::Stdio;

use netboot_testkit::netns::command;

/// Whether namespace tests can run here: root, `ip` and `nft`. Anything missing skips the
/// test with a message, or fails it when `CI` is set.
pub fn can_run() -> bool {
    super::is_root() && super::have_tool("ip", "iproute2") && super::have_tool("nft", "nftables")
}

/// Loads an nftables script into `namespace`.
pub fn load(namespace: &str, script: &str) {
    let mut child = command(namespace, "nft")
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
pub fn counter(namespace: &str, table: &str, counter: &str) -> u64 {
    let output = command(namespace, "nft")
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
