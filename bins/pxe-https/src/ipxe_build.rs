//! What `pxe-https` says at start about the iPXE it serves: the site's own build or Debian's
//! fallback, and whether that build trusts the certificate this server presents (an iPXE
//! built against another CA refuses every `https://` script, which is far easier to see here
//! than on a machine's console).

use netboot_config::IpxeDir;

use crate::tls::LoadedCertificate;

/// Logs where iPXE comes from and checks its trust against the server's certificate.
pub fn log_start(ipxe_dir: &IpxeDir, tls: &LoadedCertificate) {
    if let Some((warn, message)) = ipxe_dir.start_message() {
        if warn {
            tracing::warn!("{message}");
        } else {
            tracing::info!("{message}");
        }
    }
    if let Some(problem) = trust_problem(ipxe_dir, tls) {
        tracing::warn!("{problem}");
    }
}

/// Why the served iPXE build will refuse this server's certificate, when that can be told.
pub fn trust_problem(ipxe_dir: &IpxeDir, tls: &LoadedCertificate) -> Option<String> {
    let Some(Ok(build)) = ipxe_dir.manifest() else {
        return None;
    };
    let dir = ipxe_dir.path()?.display();
    if tls.chain_fingerprints.iter().any(|f| build.trusts(f)) {
        return None;
    }
    match &tls.site_ca {
        Some(ca) => Some(format!(
            "the iPXE build in {dir} trusts {} but this server's certificate is issued by the site CA {} ({}): \
             iPXE will refuse its https:// scripts; rebuild iPXE with --trust {}",
            build.trust_sha256.join(", "),
            ca.cert_path.display(),
            ca.fingerprint,
            ca.cert_path.display()
        )),
        // A certificate from an enterprise CA: its root is usually not in the chain file, so
        // a mismatch cannot be told from here.
        None => {
            tracing::info!(
                trusted = %build.trust_sha256.join(", "),
                "the iPXE build in {dir} must trust the root CA of {} (it is not in the chain sent)",
                tls.cert_path.display()
            );
            None
        }
    }
}
