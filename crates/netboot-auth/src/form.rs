//! The login form iPXE POSTs to the server (`username`, `password`, `attempt`): the body
//! the login script of `netboot-ipxe` makes it send, with user name and password in iPXE's
//! `:hexhyp` form so that no character is altered on the way.

/// The longest user name or password read from a login form, in bytes.
pub const MAX_FIELD: usize = 256;

/// The user name, password and attempt number of a login form. Its `Debug` hides the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginForm {
    /// As typed (decoded).
    pub username: String,
    /// As typed (decoded).
    pub password: String,
    /// Which attempt at this console this is, from 1.
    pub attempt: u32,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl LoginForm {
    /// Reads `username`, `password` and `attempt` from an `application/x-www-form-urlencoded`
    /// body; other keys (the machine's identity) are left to
    /// `netboot_ipxe::ClientIdentity::parse_form`. The login form sends the user name and
    /// password in iPXE's `:hexhyp` form (see `netboot_ipxe::login_script`). Never fails:
    /// missing or undecodable fields are empty, overlong ones are cut, a bad attempt number
    /// counts as 1.
    pub fn parse(body: &[u8]) -> Self {
        let mut form = Self {
            username: String::new(),
            password: String::new(),
            attempt: 1,
        };
        let (mut username, mut password, mut attempt) = (None, None, None);
        for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &[][..]),
            };
            let slot = match key {
                b"username" => &mut username,
                b"password" => &mut password,
                b"attempt" => &mut attempt,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        let decode = |value: &[u8]| cut(&decode_hexhyp(&percent_decode(value)));
        form.username = username.map(decode).unwrap_or_default();
        form.password = password.map(decode).unwrap_or_default();
        form.attempt = attempt
            .and_then(|a| {
                std::str::from_utf8(&percent_decode(a).into_bytes())
                    .ok()?
                    .parse()
                    .ok()
            })
            .filter(|&a| a >= 1)
            .unwrap_or(1);
        form
    }

    /// The body the login script makes iPXE send (for tests and tools): the inverse of
    /// [`Self::parse`].
    pub fn to_form(&self) -> String {
        format!(
            "username={}&password={}&attempt={}",
            encode_hexhyp(&self.username),
            encode_hexhyp(&self.password),
            self.attempt
        )
    }
}

/// Cuts at [`MAX_FIELD`] bytes on a character boundary.
fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_FIELD);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Form decoding: `%XX` is a byte, bad escapes stay as they are; invalid UTF-8 becomes
/// U+FFFD. iPXE encodes a space as `%20`, so `+` is left alone.
fn percent_decode(input: &[u8]) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(high), Some(low)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// iPXE's `:hexhyp` (`61-62`) back to text; anything else is empty, which no account matches.
fn decode_hexhyp(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let bytes: Option<Vec<u8>> = text
        .split('-')
        .map(|pair| match pair.as_bytes() {
            [high, low] => Some(hex(*high)? << 4 | hex(*low)?),
            _ => None,
        })
        .collect();
    bytes
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// `:hexhyp` as iPXE formats it.
fn encode_hexhyp(text: &str) -> String {
    text.bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_login_form_hides_the_password_in_debug_and_reads_ipxe_bodies() {
        // What iPXE sends for user "a b" and password "p%${x}&=+" with `:hexhyp`.
        let body = b"username=61-20-62&password=70-25-24-7b-78-7d-26-3d-2b&attempt=2&mac=52-54-00-12-34-56";
        let form = LoginForm::parse(body);
        assert_eq!(form.username, "a b");
        assert_eq!(form.password, "p%${x}&=+");
        assert_eq!(form.attempt, 2);
        assert!(!format!("{form:?}").contains("p%"));
        assert_eq!(LoginForm::parse(b"attempt=0").attempt, 1);
        assert_eq!(LoginForm::parse(b"attempt=x&username").username, "");
        assert_eq!(LoginForm::parse(b"username=6").username, "");
        assert_eq!(LoginForm::parse(b"username=zz-61").username, "");
    }

    proptest! {
        #[test]
        fn login_forms_round_trip(
            username in "\\PC{0,64}",
            password in "\\PC{0,64}",
            attempt in 1u32..100,
        ) {
            let form = LoginForm { username: cut(&username), password: cut(&password), attempt };
            prop_assert_eq!(LoginForm::parse(form.to_form().as_bytes()), form);
        }

        #[test]
        fn any_body_parses_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..600)) {
            let form = LoginForm::parse(&body);
            prop_assert!(form.username.len() <= MAX_FIELD && form.password.len() <= MAX_FIELD);
            prop_assert!(form.attempt >= 1);
        }
    }
}
