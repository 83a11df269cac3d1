//! `pxe-tftp`: TFTP service for network boot programs.

fn main() -> std::process::ExitCode {
    netboot_service::main::<pxe_tftp::Tftp>()
}
