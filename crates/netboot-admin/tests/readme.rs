//! The README's boot-records example is a valid configuration.

#[test]
fn readme_records_example_parses() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = &readme[readme
        .find("## Boot records")
        .expect("README has the boot records section")..];
    let start = section.find("```toml\n").unwrap() + 8;
    let end = start + section[start..].find("```").unwrap();
    let config = netboot_config::Config::from_toml_str(&section[start..end]).unwrap();
    assert!(config.records.enabled && config.admin.enabled);
}
