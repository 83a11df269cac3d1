//! The identity iPXE reports when it asks for its decision, and how it maps to a
//! [`BootRequest`].

use netboot_core::{BootRequest, BootStage, ClientArch, HardwareInfo, MacAddr, SmbiosUuid};

/// Longest kept value of a free-text field (SMBIOS strings), in bytes; longer values are cut
/// at a character boundary. SMBIOS strings are at most 64 bytes in practice.
pub const FIELD_MAX: usize = 256;

/// Why an identity could not be turned into a [`BootRequest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// No `mac` field.
    #[error("no mac parameter")]
    MissingMac,
    /// The `mac` field is not a MAC address.
    #[error("mac parameter is not a MAC address")]
    BadMac,
    /// `platform`/`buildarch` are missing or name no architecture we know.
    #[error("unknown platform/buildarch combination {platform:?}/{buildarch:?}")]
    UnknownArch {
        /// `${platform}` as sent (sanitised).
        platform: String,
        /// `${buildarch}` as sent (sanitised).
        buildarch: String,
    },
}

/// What iPXE sent: query string or `params` form body, decoded leniently.
///
/// Accepted keys: `mac`, `uuid`, `buildarch`, `platform`, `manufacturer`, `product`,
/// `serial`, `asset`, and `<name>_hex` variants of the four SMBIOS strings carrying iPXE's
/// `:hexhyp` (`41-42-43`) or `:hex` (`41:42:43`) format, which the entry script uses so the
/// values never pass through iPXE's setting expansion as text. Unknown keys are ignored; repeated keys keep the first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIdentity {
    /// `${netX/mac}` in any common notation.
    pub mac: Option<String>,
    /// `${uuid}`.
    pub uuid: Option<String>,
    /// `${buildarch}`.
    pub buildarch: Option<String>,
    /// `${platform}`.
    pub platform: Option<String>,
    /// `${manufacturer}`.
    pub manufacturer: Option<String>,
    /// `${product}`.
    pub product: Option<String>,
    /// `${serial}`.
    pub serial: Option<String>,
    /// `${asset}`.
    pub asset: Option<String>,
}

impl ClientIdentity {
    /// Decodes an `application/x-www-form-urlencoded` body or a query string. Never fails:
    /// bad percent escapes are kept literally, invalid UTF-8 becomes U+FFFD, and each value is
    /// capped at [`FIELD_MAX`] bytes.
    pub fn parse_form(input: &[u8]) -> Self {
        let mut identity = Self::default();
        for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &[][..]),
            };
            let key = percent_decode(key);
            let value = percent_decode(value);
            let (name, hex) = match key.strip_suffix("_hex") {
                Some(name) => (name, true),
                None => (key.as_str(), false),
            };
            let slot = match name {
                "mac" if !hex => &mut identity.mac,
                "uuid" if !hex => &mut identity.uuid,
                "buildarch" if !hex => &mut identity.buildarch,
                "platform" if !hex => &mut identity.platform,
                "manufacturer" => &mut identity.manufacturer,
                "product" => &mut identity.product,
                "serial" => &mut identity.serial,
                "asset" => &mut identity.asset,
                _ => continue,
            };
            if slot.is_none() {
                let text = if hex { decode_ipxe_hex(&value) } else { Some(value) };
                *slot = text.map(|t| cap(&t)).filter(|t| !t.is_empty());
            }
        }
        identity
    }

    /// Encodes as a form body / query string that [`Self::parse_form`] reads back.
    pub fn to_form(&self) -> String {
        let mut out = String::new();
        for (key, value) in self.fields() {
            if let Some(value) = value {
                if !out.is_empty() {
                    out.push('&');
                }
                out.push_str(key);
                out.push('=');
                crate::url::percent_encode_into(value, &mut out);
            }
        }
        out
    }

    fn fields(&self) -> [(&'static str, &Option<String>); 8] {
        [
            ("mac", &self.mac),
            ("uuid", &self.uuid),
            ("buildarch", &self.buildarch),
            ("platform", &self.platform),
            ("manufacturer", &self.manufacturer),
            ("product", &self.product),
            ("serial", &self.serial),
            ("asset", &self.asset),
        ]
    }

    /// Builds the resolver's request (stage [`BootStage::Ipxe`], user class `iPXE`).
    /// A missing, placeholder or malformed UUID is left out rather than refused.
    pub fn to_request(&self) -> Result<BootRequest, IdentityError> {
        let mac: MacAddr = self
            .mac
            .as_deref()
            .ok_or(IdentityError::MissingMac)?
            .parse()
            .map_err(|_| IdentityError::BadMac)?;
        let platform = self.platform.as_deref().unwrap_or("");
        let buildarch = self.buildarch.as_deref().unwrap_or("");
        let arch = arch_from_ipxe(platform, buildarch).ok_or_else(|| IdentityError::UnknownArch {
            platform: crate::DisplayText::with_max(platform, 20).to_string(),
            buildarch: crate::DisplayText::with_max(buildarch, 20).to_string(),
        })?;
        let uuid = self.uuid.as_deref().and_then(|u| u.parse::<SmbiosUuid>().ok());
        let mut request = BootRequest::new(mac, arch, BootStage::Ipxe).with_uuid(uuid);
        request.user_class = Some("iPXE".into());
        request.hardware = HardwareInfo {
            manufacturer: self.manufacturer.clone(),
            product: self.product.clone(),
            serial: self.serial.clone(),
            asset: self.asset.clone(),
            platform: self.platform.clone(),
            buildarch: self.buildarch.clone(),
        };
        Ok(request)
    }
}

/// Maps iPXE's `${platform}` and `${buildarch}` to the DHCP architecture code the same
/// firmware would report (iPXE's own `dhcparch.h` values).
///
/// ```
/// use netboot_core::ClientArch;
/// use netboot_ipxe::arch_from_ipxe;
/// assert_eq!(arch_from_ipxe("efi", "x86_64"), Some(ClientArch::EfiX64));
/// assert_eq!(arch_from_ipxe("pcbios", "i386"), Some(ClientArch::X86Bios));
/// assert_eq!(arch_from_ipxe("efi", "vax"), None);
/// ```
pub fn arch_from_ipxe(platform: &str, buildarch: &str) -> Option<ClientArch> {
    Some(match (platform, buildarch) {
        ("pcbios", "i386" | "x86_64") => ClientArch::X86Bios,
        ("efi", "i386") => ClientArch::EfiIa32,
        ("efi", "x86_64") => ClientArch::EfiX64,
        ("efi", "arm32") => ClientArch::EfiArm32,
        ("efi", "arm64") => ClientArch::EfiArm64,
        ("efi", "riscv32") => ClientArch::EfiRiscv32,
        ("efi", "riscv64") => ClientArch::EfiRiscv64,
        ("efi", "loong64") => ClientArch::EfiLoongArch64,
        _ => return None,
    })
}

/// Lenient `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte, and a
/// `%` not followed by two hex digits stays as it is.
fn percent_decode(input: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(input.len().min(FIELD_MAX * 4));
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => bytes.push(b' '),
            b'%' => match hex_pair(input.get(i + 1..i + 3)) {
                Some(byte) => {
                    bytes.push(byte);
                    i += 2;
                }
                None => bytes.push(b'%'),
            },
            other => bytes.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn hex_pair(pair: Option<&[u8]>) -> Option<u8> {
    let pair = pair.filter(|p| p.len() == 2)?;
    let digit = |b: u8| char::from(b).to_digit(16);
    u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()
}

/// Decodes iPXE's `:hexhyp` (`41-42-43`) or `:hex` (`41:42:43`) format; `None` when malformed.
fn decode_ipxe_hex(text: &str) -> Option<String> {
    if text.is_empty() {
        return Some(String::new());
    }
    let bytes: Option<Vec<u8>> = text
        .split([':', '-'])
        .map(|pair| hex_pair(Some(pair.as_bytes())))
        .collect();
    Some(String::from_utf8_lossy(&bytes?).into_owned())
}

/// Cuts `text` to at most [`FIELD_MAX`] bytes at a character boundary.
fn cap(text: &str) -> String {
    if text.len() <= FIELD_MAX {
        return text.to_owned();
    }
    let mut end = FIELD_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_from_the_entry_script_decodes() {
        let query = b"mac=52-54-00-12-34-56&uuid=00112233-4455-6677-8899-aabbccddeeff&buildarch=x86_64&platform=efi&serial_hex=24:7b:78:7d&product_hex=&asset=A%2BB+C%zz";
        let identity = ClientIdentity::parse_form(query);
        assert_eq!(identity.serial.as_deref(), Some("${x}"));
        assert_eq!(identity.product, None);
        assert_eq!(identity.asset.as_deref(), Some("A+B C%zz"));
        let request = identity.to_request().unwrap();
        assert_eq!(request.mac.to_string(), "52:54:00:12:34:56");
        assert_eq!(request.arch, ClientArch::EfiX64);
        assert!(request.uuid.is_some());
    }

    #[test]
    fn hexhyp_and_hex_smbios_strings_decode_alike() {
        let hyphens = ClientIdentity::parse_form(b"mac=52-54-00-12-34-56&manufacturer_hex=51-45-4d-55");
        let colons = ClientIdentity::parse_form(b"mac=52-54-00-12-34-56&manufacturer_hex=51:45:4d:55");
        assert_eq!(hyphens.manufacturer.as_deref(), Some("QEMU"));
        assert_eq!(colons.manufacturer, hyphens.manufacturer);
    }

    #[test]
    fn bad_identities_are_named() {
        assert_eq!(
            ClientIdentity::parse_form(b"").to_request(),
            Err(IdentityError::MissingMac)
        );
        assert_eq!(
            ClientIdentity::parse_form(b"mac=zz").to_request(),
            Err(IdentityError::BadMac)
        );
        let unknown =
            ClientIdentity::parse_form(b"mac=52:54:00:12:34:56&platform=efi&buildarch=${x}").to_request();
        assert!(matches!(unknown, Err(IdentityError::UnknownArch { .. })));
    }

    #[test]
    fn huge_values_are_capped() {
        let body = format!("serial={}", "é".repeat(10_000));
        let identity = ClientIdentity::parse_form(body.as_bytes());
        assert!(identity.serial.unwrap().len() <= FIELD_MAX);
    }
}
