//! What the process holds: resident memory now and at its peak (from `/proc/self/status`),
//! and resetting the peak so that each phase of a benchmark can be measured on its own.
//!
//! May not: allocate on purpose, or change how anything allocates.

/// A line of `/proc/self/status` (`VmRSS:`, `VmHWM:`, `RssAnon:`, ...) in MiB.
pub fn status_mib(key: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resident memory now, in MiB.
pub fn rss_mib() -> Option<f64> {
    status_mib("VmRSS:")
}

/// The highest resident memory since start (or since [`reset_peak`]), in MiB.
pub fn peak_mib() -> Option<f64> {
    status_mib("VmHWM:")
}

/// Starts measuring the peak again from the present resident size (Linux 4.0+: writing
/// `5` to `/proc/self/clear_refs`). Returns whether it worked.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Resident memory now, and how much of it is anonymous (heap, stacks, JIT code) and how
/// much mapped files (the libraries' code and data): `"157 MiB (95 anonymous, 62 files)"`.
pub fn resident_summary() -> Option<String> {
    let rss = rss_mib()?;
    Some(match (status_mib("RssAnon:"), status_mib("RssFile:")) {
        (Some(anon), Some(file)) => format!("{rss:.0} MiB ({anon:.0} anonymous, {file:.0} files)"),
        _ => format!("{rss:.0} MiB"),
    })
}
