//! The real binary through a lossy, duplicating, reordering UDP relay on loopback, with real
//! clients: every transfer must complete with identical bytes.
//!
//! The relay mirrors TFTP's port changes: for every port the server answers from it opens a
//! client-facing port of its own, so per-transfer ports work through it as through a NAT.
//! (`tc netem` would be the other way, but kernels without `sch_netem` are common in CI.)

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{assert_same_file, at, have_tool, run_client, tempdir, write_test_file, Server};
use tokio::net::UdpSocket;

/// Seeded impairments shared by both directions.
struct Impairer {
    state: Mutex<u64>,
    loss_percent: u64,
    duplicate_percent: u64,
    /// Percentage of packets held back up to `max_delay_ms`, which reorders them.
    delay_percent: u64,
    max_delay_ms: u64,
}

impl Impairer {
    fn roll(&self) -> u64 {
        let mut state = self.state.lock().unwrap();
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Sends `datagram` to `dest` through the impaired link. Requests (RRQ) pass untouched so
    /// every client starts; everything after that is fair game.
    fn forward(self: &Arc<Self>, socket: &Arc<UdpSocket>, datagram: &[u8], dest: SocketAddr) {
        let is_request = datagram.starts_with(&[0, 1]);
        if !is_request && self.roll() % 100 < self.loss_percent {
            return;
        }
        let copies = if !is_request && self.roll() % 100 < self.duplicate_percent {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if self.roll() % 100 < self.delay_percent {
                self.roll() % (self.max_delay_ms + 1)
            } else {
                0
            };
            let (socket, datagram) = (socket.clone(), datagram.to_vec());
            tokio::spawn(async move {
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                let _ = socket.send_to(&datagram, dest).await;
            });
        }
    }
}

/// Runs the relay; returns the address clients should use.
async fn start_relay(server: SocketAddr, impairer: Arc<Impairer>) -> SocketAddr {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let up = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let address = front.local_addr().unwrap();
    let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
    // Client-facing sockets, one per server port.
    let mirrors: Arc<Mutex<HashMap<u16, Arc<UdpSocket>>>> = Arc::default();
    {
        let (front, up, client, impairer) = (front.clone(), up.clone(), client.clone(), impairer.clone());
        tokio::spawn(async move {
            let mut buf = vec![0; 70_000];
            while let Ok((len, from)) = front.recv_from(&mut buf).await {
                *client.lock().unwrap() = Some(from);
                impairer.forward(&up, &buf[..len], server);
            }
        });
    }
    tokio::spawn(async move {
        let mut buf = vec![0; 70_000];
        while let Ok((len, from)) = up.recv_from(&mut buf).await {
            let Some(client_addr) = *client.lock().unwrap() else {
                continue;
            };
            let existing = mirrors.lock().unwrap().get(&from.port()).cloned();
            let mirror = match existing {
                Some(mirror) => mirror,
                None => {
                    let mirror = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                    mirrors.lock().unwrap().insert(from.port(), mirror.clone());
                    let (mirror_rx, up, impairer) = (mirror.clone(), up.clone(), impairer.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0; 70_000];
                        while let Ok((len, _)) = mirror_rx.recv_from(&mut buf).await {
                            impairer.forward(&up, &buf[..len], from);
                        }
                    });
                    mirror
                }
            };
            impairer.forward(&mirror, &buf[..len], client_addr);
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_complete_through_a_lossy_reordering_relay() {
    let dir = tempdir();
    let root = at(dir.path(), "root");
    std::fs::create_dir(&root).unwrap();
    write_test_file(&root.join("nbp.efi"), 1_500_001, 11);
    // curl asks for `timeout 1`, which the server honours, so each loss costs it a second:
    // it gets a smaller file.
    write_test_file(&root.join("small.efi"), 40_001, 12);
    let config = at(dir.path(), "tftp.toml");
    // A short retransmission timeout keeps the test quick; the retries cover bursts of loss.
    std::fs::write(&config, "[tftp]\ntimeout_ms = 50\nretries = 40\n").unwrap();
    let server = Server::start(&root, &["--config", config.to_str().unwrap()]);
    let impairer = Arc::new(Impairer {
        state: Mutex::new(0x5eed_1234_abcd_0001),
        loss_percent: 3,
        duplicate_percent: 2,
        delay_percent: 10,
        max_delay_ms: 5,
    });
    let relay = start_relay(server.addr, impairer).await;
    let out = at(dir.path(), "out");
    let mut clients: Vec<(&str, Command, &str)> = Vec::new();
    if have_tool("curl", "curl") {
        let mut curl = Command::new("curl");
        curl.args([
            "--silent",
            "--show-error",
            "--fail",
            "--tftp-blksize",
            "1468",
            "--output",
        ])
        .arg(&out)
        .arg(format!("tftp://{relay}/small.efi"));
        clients.push(("curl", curl, "small.efi"));
    }
    if have_tool("atftp", "atftp") {
        let mut atftp = Command::new("atftp");
        atftp
            .args(["--get", "--remote-file", "nbp.efi", "--local-file"])
            .arg(&out)
            .args(["--option", "blksize 1468", "--option", "windowsize 8"])
            .args([relay.ip().to_string(), relay.port().to_string()]);
        clients.push(("atftp windowsize 8", atftp, "nbp.efi"));
    }
    if have_tool("tftp", "tftp-hpa") {
        let mut tftp = Command::new("tftp");
        tftp.args([
            "-m",
            "binary",
            &relay.ip().to_string(),
            &relay.port().to_string(),
            "-c",
            "get",
            "nbp.efi",
        ])
        .arg(&out);
        clients.push(("tftp-hpa", tftp, "nbp.efi"));
    }
    for (name, client, file) in clients {
        eprintln!("through the relay: {name}");
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || run_client(client))
            .await
            .unwrap();
        eprintln!("{name}: {:?}", started.elapsed());
        assert_same_file(&root.join(file), &out);
        std::fs::remove_file(&out).unwrap();
    }
}
