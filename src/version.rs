//! What `stilts --version` prints: version, git commit, cargo features, training backends and
//! target, all fixed at build time by `build.rs`.

/// `stilts --version` (`-V` prints the first line only).
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit:   ",
    env!("STILTS_GIT_COMMIT"),
    "\nfeatures: ",
    env!("STILTS_FEATURES"),
    "\nbackends: ",
    env!("STILTS_BACKENDS"),
    "\ntarget:   ",
    env!("STILTS_TARGET"),
);
