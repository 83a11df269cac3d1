//! `pxe-server`: proxyDHCP, TFTP and the HTTPS boot-script service in one process.

fn main() -> std::process::ExitCode {
    netboot_service::main_with_commands::<pxe_server::PxeServer, pxe_https::commands::Command>()
}
