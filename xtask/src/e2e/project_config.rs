//! The one configuration file every service of the lab reads, and the per-machine scripts it
//! points at.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::client::{ClientSpec, Expect};
use super::lab::Lab;

/// Writes `netboot.toml` and the scripts into `dir`; returns the configuration's path.
pub(crate) fn write(lab: &Lab, dir: &Path, clients: &[ClientSpec]) -> Result<PathBuf> {
    let files = dir.join("files");
    std::fs::create_dir_all(files.join("e2e"))?;
    let mut toml = String::new();
    writeln!(toml, "[log]\nlevel = \"info,netboot=debug\"\n")?;
    writeln!(toml, "[resolver]\nkind = \"static\"\n")?;
    writeln!(toml, "[resolver.static]\nunmatched = \"exit\"\n")?;
    for client in clients.iter().filter(|c| c.expect == Expect::Script) {
        let script = format!("e2e/{}.ipxe", client.name);
        std::fs::write(files.join(&script), super::reference::machine_script(client))?;
        writeln!(
            toml,
            "[[resolver.static.actions]]\nid = \"{name}\"\ntitle = \"e2e {name}\"\ntarget = {{ kind = \"chain\", url = \"{script}\" }}\n",
            name = client.name
        )?;
        writeln!(
            toml,
            "[[resolver.static.machines]]\nname = \"{}\"\nmac = \"{}\"\nrequired = [\"{}\"]\n",
            client.name, client.mac, client.name
        )?;
    }
    let _ = lab;
    let path = dir.join("netboot.toml");
    std::fs::write(&path, toml)?;
    Ok(path)
}
