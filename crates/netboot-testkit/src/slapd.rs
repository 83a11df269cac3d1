//! A private OpenLDAP directory (Debian's `slapd`) for tests and the e2e lab: a `slapd.conf`
//! with the stock schemas, an MDB database loaded from LDIF with `slapadd`, and the TLS files
//! the caller puts next to it. The caller starts `slapd` (on loopback, or inside a lab's
//! network namespace) with [`Directory::command_args`].

use std::path::{Path, PathBuf};
use std::process::Command;

/// `slapd` and `slapadd`, from `PATH` or `/usr/sbin` (which a user's `PATH` may lack).
pub fn binaries() -> Option<(PathBuf, PathBuf)> {
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    dirs.into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| (dir.join("slapd"), dir.join("slapadd")))
        .find(|(slapd, slapadd)| slapd.is_file() && slapadd.is_file())
}

/// An `inetOrgPerson` under `ou=people,<base>` with a clear-text `userPassword` (slapd checks
/// simple binds against it).
pub fn person(base: &str, uid: &str, password: &str) -> String {
    format!(
        "dn: uid={uid},ou=people,{base}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n\
         sn: {uid}\nuserPassword: {password}\n\n"
    )
}

/// A `groupOfNames` under `ou=groups,<base>` with member DNs.
pub fn group(base: &str, cn: &str, members: &[&str]) -> String {
    let members: String = members.iter().map(|m| format!("member: {m}\n")).collect();
    format!("dn: cn={cn},ou=groups,{base}\nobjectClass: groupOfNames\ncn: {cn}\n{members}\n")
}

/// The base entry and the `people` and `groups` units every directory here starts with.
pub fn skeleton(base: &str) -> String {
    let dc = base
        .split(',')
        .next()
        .and_then(|rdn| rdn.strip_prefix("dc="))
        .unwrap_or("example");
    format!(
        "dn: {base}\nobjectClass: dcObject\nobjectClass: organization\no: {dc}\ndc: {dc}\n\n\
         dn: ou=people,{base}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{base}\nobjectClass: organizationalUnit\nou: groups\n\n"
    )
}

/// A directory prepared in a directory of its own: configuration, database and TLS files.
#[derive(Debug)]
pub struct Directory {
    dir: PathBuf,
}

impl Directory {
    /// Writes `slapd.conf` for suffix `base` into `dir` (which must hold `ca.pem`,
    /// `server.pem` and `server.key`) and loads `ldif` with `slapadd`. Passwords are readable
    /// only through binds; authenticated users read the rest.
    pub fn prepare(slapadd: &Path, dir: &Path, base: &str, ldif: &str) -> Result<Self, String> {
        let path = |name: &str| dir.join(name);
        std::fs::create_dir_all(path("db")).map_err(|e| format!("creating the database directory: {e}"))?;
        let schema = |name: &str| format!("include /etc/ldap/schema/{name}.schema\n");
        let conf = format!(
            "{}{}{}{}\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\n\
             pidfile {dir}/slapd.pid\n\
             TLSCACertificateFile {dir}/ca.pem\n\
             TLSCertificateFile {dir}/server.pem\n\
             TLSCertificateKeyFile {dir}/server.key\n\
             database mdb\nmaxsize 10485760\nsuffix \"{base}\"\n\
             rootdn \"cn=admin,{base}\"\nrootpw \"root password\"\n\
             directory {dir}/db\n\
             access to attrs=userPassword by anonymous auth by * none\n\
             access to * by users read by * none\n",
            schema("core"),
            schema("cosine"),
            schema("inetorgperson"),
            schema("nis"),
            dir = dir.display(),
        );
        std::fs::write(path("slapd.conf"), conf).map_err(|e| format!("writing slapd.conf: {e}"))?;
        std::fs::write(path("directory.ldif"), ldif).map_err(|e| format!("writing the LDIF: {e}"))?;
        let added = Command::new(slapadd)
            .arg("-f")
            .arg(path("slapd.conf"))
            .arg("-l")
            .arg(path("directory.ldif"))
            .output()
            .map_err(|e| format!("running {}: {e}", slapadd.display()))?;
        if !added.status.success() {
            return Err(format!("slapadd: {}", String::from_utf8_lossy(&added.stderr)));
        }
        Ok(Self { dir: dir.to_owned() })
    }

    /// Arguments for `slapd` serving this directory on `urls` (e.g.
    /// `ldaps://127.0.0.1:6360/`) in the foreground, quiet.
    pub fn command_args(&self, urls: &[String]) -> Vec<String> {
        vec![
            "-f".into(),
            self.dir.join("slapd.conf").display().to_string(),
            "-h".into(),
            urls.join(" "),
            "-d".into(),
            "0".into(),
        ]
    }
}
