//! `pxe-https`: serves iPXE boot scripts and boot files over HTTPS (and plain HTTP).

fn main() -> std::process::ExitCode {
    netboot_service::main::<pxe_https::Https>()
}
