//! `pxe-https`: serves iPXE boot scripts and boot files over HTTPS (and plain HTTP).

fn main() -> std::process::ExitCode {
    netboot_service::main_with_commands::<pxe_https::Https, pxe_https::commands::Command>()
}
