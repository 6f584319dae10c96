//! glibc malloc settings for training on the CPU backend.
//!
//! Every tensor op on burn-flex allocates its output, and most are larger than glibc's default
//! mmap threshold (128 KiB, raised dynamically only up to the sizes it has seen freed): such
//! blocks are mmapped and unmapped on every op, so the kernel faults in and zeroes fresh pages each
//! time (~13 % of a step's samples under perf). Serving them from the heap and keeping freed memory
//! there took a MiniLM train step from 2.0–2.2 s to 1.73–1.98 s on the 2-core dev machine, for 3.5 %
//! more peak RSS (1.05 → 1.09 GB). Setting only the trim threshold is worse than nothing (3.3 s):
//! it switches off the dynamic mmap threshold.

/// Raises the mmap threshold (1 GiB, or 32 MiB where glibc caps it) and the trim threshold, unless
/// the user set `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or `GLIBC_TUNABLES` (then
/// theirs stand). Returns the mmap threshold set, if any. No-op off glibc.
pub fn tune_for_training() -> Option<usize> {
    let user_set = [
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_",
        "GLIBC_TUNABLES",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some());
    if user_set {
        return None;
    }
    imp::tune()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
mod imp {
    pub fn tune() -> Option<usize> {
        for threshold in [1 << 30, 32 << 20] {
            // SAFETY: mallopt only sets allocator parameters (under the arena locks); it has no
            // preconditions and returns 1 on success, 0 for a value glibc refuses.
            if unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) } == 1 {
                // SAFETY: as above.
                unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) };
                return Some(threshold as usize);
            }
        }
        None
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub fn tune() -> Option<usize> {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_accepts_the_thresholds() {
        if cfg!(all(target_os = "linux", target_env = "gnu"))
            && std::env::var_os("GLIBC_TUNABLES").is_none()
        {
            assert!(super::imp::tune().is_some());
        }
    }
}
