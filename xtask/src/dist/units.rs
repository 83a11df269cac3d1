//! The systemd units the package ships: one per service binary and one for `pxe-server`,
//! written from one table and one hardening block so the four cannot drift apart.

/// One service unit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unit {
    /// The binary in /usr/bin, which is also the unit's name.
    pub(crate) binary: &'static str,
    /// `Description=`.
    description: &'static str,
    /// Enabled (and started) when the package is installed.
    pub(crate) enabled_by_default: bool,
}

/// The units, `pxe-server` first. The three single-service units bind the same ports as
/// `pxe-server`, so each conflicts with it: starting one stops the other.
pub(crate) const UNITS: &[Unit] = &[
    Unit {
        binary: "pxe-server",
        description: "netboot PXE server (proxyDHCP, TFTP and HTTPS boot scripts in one process)",
        enabled_by_default: true,
    },
    Unit {
        binary: "pxe-proxy",
        description: "netboot proxyDHCP (UDP 67 and the PXE boot-server port 4011)",
        enabled_by_default: false,
    },
    Unit {
        binary: "pxe-tftp",
        description: "netboot TFTP server for the iPXE boot programs",
        enabled_by_default: false,
    },
    Unit {
        binary: "pxe-https",
        description: "netboot HTTPS iPXE scripts and boot files",
        enabled_by_default: false,
    },
];

/// The system user and group the services run as.
pub(crate) const SERVICE_USER: &str = "netboot";

/// Capabilities the services keep: binding ports below 1024, and `SO_BINDTODEVICE` / packet
/// sockets for `[proxy] interfaces`. Nothing else, not even in the bounding set.
pub(crate) const CAPABILITIES: &str = "CAP_NET_BIND_SERVICE CAP_NET_RAW";

/// The sandbox every unit runs in. Each line was checked against a running `pxe-server` in
/// the `cargo xtask dist --test` container: it starts, binds, makes its site CA and reloads.
const HARDENING: &str = "\
NoNewPrivileges=yes
# The services write only their state directory (site CA, issued certificates, records);
# paths a site adds (TFTP uploads, a records file elsewhere) need ReadWritePaths= in a drop-in.
ProtectSystem=strict
StateDirectory=netboot
StateDirectoryMode=0750
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
# Netlink lists the interfaces and their addresses; packet sockets receive DHCP when
# another DHCP server holds port 67.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_PACKET
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
UMask=0027
";

impl Unit {
    /// The unit file's name.
    pub(crate) fn file_name(&self) -> String {
        format!("{}.service", self.binary)
    }

    /// The unit file.
    pub(crate) fn render(&self) -> String {
        let conflicts = if self.binary == "pxe-server" {
            String::new()
        } else {
            "Conflicts=pxe-server.service\n".to_owned()
        };
        format!(
            "[Unit]\n\
             Description={description}\n\
             Documentation=file:/usr/share/doc/netboot/README.md.gz https://github.com/netboot-rs/netboot\n\
             Wants=network-online.target\n\
             After=network-online.target\n\
             {conflicts}\
             \n\
             [Service]\n\
             Type=exec\n\
             ExecStart=/usr/bin/{binary} --config /etc/netboot/netboot.toml\n\
             ExecReload=/bin/kill -HUP $MAINPID\n\
             KillSignal=SIGTERM\n\
             # Above [runtime] drain_secs (30 by default), so transfers in flight can finish.\n\
             TimeoutStopSec=45\n\
             Restart=on-failure\n\
             # A configuration error does not go away by restarting.\n\
             RestartPreventExitStatus=2\n\
             User={user}\n\
             Group={user}\n\
             AmbientCapabilities={caps}\n\
             CapabilityBoundingSet={caps}\n\
             {HARDENING}\
             \n\
             [Install]\n\
             WantedBy=multi-user.target\n",
            description = self.description,
            binary = self.binary,
            user = SERVICE_USER,
            caps = CAPABILITIES,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pxe_server_is_enabled_and_the_others_give_way_to_it() {
        let enabled: Vec<_> = UNITS
            .iter()
            .filter(|u| u.enabled_by_default)
            .map(|u| u.binary)
            .collect();
        assert_eq!(enabled, ["pxe-server"]);
        for unit in UNITS {
            let text = unit.render();
            assert_eq!(
                text.contains("Conflicts=pxe-server.service"),
                unit.binary != "pxe-server",
                "{text}"
            );
        }
    }

    #[test]
    fn every_unit_runs_unprivileged_with_two_capabilities() {
        for unit in UNITS {
            let text = unit.render();
            let lines: Vec<&str> = text.lines().collect();
            for expected in [
                "User=netboot",
                "AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW",
                "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW",
                "ProtectSystem=strict",
                "StateDirectory=netboot",
                "NoNewPrivileges=yes",
                "RestartPreventExitStatus=2",
            ] {
                assert!(
                    lines.contains(&expected),
                    "{} lacks {expected}:\n{text}",
                    unit.file_name()
                );
            }
            assert!(lines.contains(
                &format!(
                    "ExecStart=/usr/bin/{} --config /etc/netboot/netboot.toml",
                    unit.binary
                )
                .as_str()
            ));
        }
    }

    #[test]
    fn every_key_is_in_a_section_and_none_is_repeated() {
        for unit in UNITS {
            let text = unit.render();
            let mut section = None;
            let mut seen = std::collections::HashSet::new();
            for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
                if line.starts_with('[') {
                    section = Some(line);
                    continue;
                }
                let (key, _) = line
                    .split_once('=')
                    .unwrap_or_else(|| panic!("not a key: {line}"));
                assert!(section.is_some(), "{key} before any section");
                assert!(seen.insert((section, key)), "{key} twice in {section:?}");
            }
        }
    }
}
