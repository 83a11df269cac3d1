//! `pxe-proxy`: proxyDHCP service for network boot.

fn main() -> std::process::ExitCode {
    netboot_service::main::<pxe_proxy::Proxy>()
}
