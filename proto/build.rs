//! Generates the stilts.v1 client and server code into OUT_DIR.
//! protoc must be installed (Debian: `apt-get install protobuf-compiler`); etcd-client needs it too.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() && which("protoc").is_none() {
        return Err("protoc not found: install it (Debian/Ubuntu: `sudo apt-get install -y \
                    protobuf-compiler`, macOS: `brew install protobuf`) or set PROTOC=/path/to/protoc"
            .into());
    }
    tonic_prost_build::configure().compile_protos(&["stilts/v1/stilts.proto"], &["."])?;
    println!("cargo:rerun-if-changed=stilts/v1/stilts.proto");
    Ok(())
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(bin))
        .find(|p| p.is_file())
}
