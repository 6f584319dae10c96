//! The `device` label a worker announces, which the coordinator's compute accounting uses
//! (`stilts_common::usage`): `cpu`, or the GPU's name.

use std::process::{Command, Stdio};

/// `cpu` for a CPU backend; for `libtorch-cuda[:N]` the name `nvidia-smi` gives GPU N, else
/// `cuda:N`. `explicit` (the worker's `--device`) wins.
pub fn label(backend: &str, explicit: Option<&str>) -> String {
    if let Some(d) = explicit.map(str::trim).filter(|d| !d.is_empty()) {
        return d.to_string();
    }
    let Some(rest) = backend.strip_prefix("libtorch-cuda") else {
        return "cpu".to_string();
    };
    let index = rest.strip_prefix(':').unwrap_or("0");
    gpu_name(index).unwrap_or_else(|| format!("cuda:{index}"))
}

fn gpu_name(index: &str) -> Option<String> {
    let out = Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader", "-i", index])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !name.is_empty()).then_some(name)
}

/// Total memory of GPU `index` in bytes, from
/// `nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i N` (MiB); `None` without
/// nvidia-smi or that GPU.
pub fn gpu_memory_total(index: u32) -> Option<u64> {
    let out = Command::new("nvidia-smi")
        .args([
            "--query-gpu=memory.total",
            "--format=csv,noheader,nounits",
            "-i",
            &index.to_string(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_mib(&String::from_utf8_lossy(&out.stdout))
}

/// nvidia-smi's `memory.total` without units: MiB, one line per GPU (the first is taken).
fn parse_mib(text: &str) -> Option<u64> {
    let mib: u64 = text.lines().next()?.trim().parse().ok()?;
    (mib > 0).then_some(mib << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(label("cpu", None), "cpu");
        assert_eq!(label("libtorch-cpu", None), "cpu");
        assert_eq!(label("cpu", Some(" A100 ")), "A100");
        // Without a GPU here nvidia-smi is missing or fails: the index names it.
        if gpu_name("3").is_none() {
            assert_eq!(label("libtorch-cuda:3", None), "cuda:3");
        }
    }

    #[test]
    fn nvidia_smi_memory_is_mib() {
        // An H200 says 143771, an H100 80GB 81559.
        assert_eq!(parse_mib("143771\n"), Some(143_771 << 20));
        assert_eq!(parse_mib(" 81559 \n81559\n"), Some(81_559 << 20));
        assert_eq!(parse_mib("[N/A]\n"), None);
        assert_eq!(parse_mib(""), None);
        assert_eq!(parse_mib("0"), None);
    }
}
