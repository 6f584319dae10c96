//! Generates the stilts.v1 client and server code into OUT_DIR, and the encoded file descriptor
//! set that server reflection serves (`FILE_DESCRIPTOR_SET`).
//!
//! protoc: `PROTOC` when set — `.cargo/config.toml` sets it for every build script in this
//! repository to `.cargo/protoc` (the protoc of the protoc-bin-vendored crate), and a user's own
//! `PROTOC` wins over that — otherwise (built from outside the repository) the vendored protoc.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=stilts/v1/stilts.proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    let mut config = tonic_prost_build::Config::new();
    if std::env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("stilts_v1_descriptor.bin"))
        .compile_with_config(config, &["stilts/v1/stilts.proto"], &["."])?;
    Ok(())
}
