//! The ConfigMgr-shaped fixture of this repository (`testdata/configmgr`), for tests,
//! benchmarks and the demo configuration. Only meaningful inside a source checkout.

use std::path::{Path, PathBuf};

use crate::{SourceError, SqliteSite};

/// The fixture's migration directory (schema and seed data).
pub fn migrations_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/configmgr/migrations")
}

/// Boot images of the fixture that count as copied to this server; `PS100006` is left out on
/// purpose (its deployment tests "boot image not on this server").
pub const PRESENT_BOOT_IMAGES: [&str; 3] = ["PS100003", "PS100004", "PS100005"];

/// A fixture materialised under one directory.
#[derive(Debug)]
pub struct Fixture {
    /// The SQLite database file.
    pub database: PathBuf,
    /// The boot-image directory (one folder per PackageID).
    pub images: PathBuf,
    /// The fixture opened through the SQLite backend.
    pub site: SqliteSite,
}

/// Creates `dir/configmgr.sqlite` from the migrations and `dir/images/<id>/boot.wim`
/// (placeholder content) for [`PRESENT_BOOT_IMAGES`]; `PS100004` also gets `BCD` and
/// `boot.sdi`.
pub async fn create(dir: &Path) -> Result<Fixture, SourceError> {
    let database = dir.join("configmgr.sqlite");
    let images = dir.join("images");
    let io_error = |e: std::io::Error| SourceError::Settings {
        detail: format!("creating fixture files: {e}"),
    };
    for id in PRESENT_BOOT_IMAGES {
        let folder = images.join(id);
        std::fs::create_dir_all(&folder).map_err(io_error)?;
        std::fs::write(folder.join("boot.wim"), format!("placeholder boot image {id}\n"))
            .map_err(io_error)?;
    }
    std::fs::write(images.join("PS100004/BCD"), b"placeholder BCD\n").map_err(io_error)?;
    std::fs::write(images.join("PS100004/boot.sdi"), b"placeholder boot.sdi\n").map_err(io_error)?;
    let location = database.to_str().ok_or(SourceError::Settings {
        detail: "fixture path is not UTF-8".into(),
    })?;
    let site = SqliteSite::open(location, Some(&migrations_dir())).await?;
    Ok(Fixture {
        database,
        images,
        site,
    })
}
