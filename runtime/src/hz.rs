//! The kernel's HZ (jiffies per second), for fields the kernel keeps in
//! jiffies (`rto`). It is a build option (`CONFIG_HZ`) that neither BTF
//! nor any sysctl exposes, so it is found from what the running kernel
//! says:
//!
//! 1. `CONFIG_HZ=` in `/boot/config-RELEASE` when that file exists;
//! 2. otherwise `/proc/timer_list`, which prints the current `jiffies`
//!    next to the monotonic clock (`now at N nsecs`). Jiffies start at
//!    `INITIAL_JIFFIES = 2^32 - 300 * HZ` (so that they wrap five minutes
//!    after boot), hence `HZ = (jiffies - 2^32) / (seconds since boot -
//!    300)`. Within a minute of that five-minute mark the quotient is
//!    unreliable and two readings 250 ms apart are used instead.
//!
//! The estimate must fall within 3% of a value `CONFIG_HZ` can take.
use std::{
    io::{BufRead, BufReader},
    time::Duration,
};

/// Values `CONFIG_HZ` takes on the architectures Linux builds for.
const KNOWN: &[u32] = &[
    24, 32, 48, 64, 100, 128, 200, 250, 256, 300, 500, 1000, 1024,
];

/// The kernel's HZ, or why it could not be found.
pub fn kernel_hz(release: &str) -> Result<u32, String> {
    if let Ok(text) = std::fs::read_to_string(format!("/boot/config-{release}")) {
        if let Some(hz) = text
            .lines()
            .find_map(|l| l.strip_prefix("CONFIG_HZ="))
            .and_then(|v| v.trim().parse().ok())
        {
            return Ok(hz);
        }
    }
    let (now, jiffies) = timer_list()?;
    let since_mark = now - 300.0;
    let estimate = if since_mark.abs() >= 60.0 {
        (jiffies as f64 - 4_294_967_296.0) / since_mark
    } else {
        std::thread::sleep(Duration::from_millis(250));
        let (now2, jiffies2) = timer_list()?;
        (jiffies2 as f64 - jiffies as f64) / (now2 - now)
    };
    nearest(estimate)
        .ok_or_else(|| format!("/proc/timer_list gives HZ ≈ {estimate:.1}, not a CONFIG_HZ value"))
}

/// The CONFIG_HZ value within 3% of `estimate`.
fn nearest(estimate: f64) -> Option<u32> {
    KNOWN
        .iter()
        .copied()
        .find(|&hz| (estimate - hz as f64).abs() <= 0.03 * hz as f64)
}

/// (`now at` in seconds, the first `jiffies:` line) from /proc/timer_list,
/// reading only as far as that line.
fn timer_list() -> Result<(f64, u64), String> {
    let path = "/proc/timer_list";
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut now = None;
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|e| format!("{path}: {e}"))?;
        if let Some(rest) = line.strip_prefix("now at ") {
            now = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .map(|ns| ns as f64 / 1e9);
        } else if let Some(rest) = line.strip_prefix("jiffies: ") {
            let j = rest.trim().parse::<u64>().ok();
            return match (now, j) {
                (Some(n), Some(j)) => Ok((n, j)),
                _ => Err(format!("{path}: no `now at` before `jiffies:`")),
            };
        }
    }
    Err(format!("{path}: no `jiffies:` line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_round_to_config_values() {
        assert_eq!(nearest(249.99), Some(250));
        assert_eq!(nearest(1003.0), Some(1000));
        assert_eq!(nearest(99.0), Some(100));
        assert_eq!(nearest(300.4), Some(300));
        assert_eq!(nearest(180.0), None);
    }

    /// On this machine: the timer_list estimate agrees with the kernel's
    /// own configuration when /proc/config.gz is there to ask.
    #[test]
    fn timer_list_agrees_with_config() {
        let Ok((now, jiffies)) = timer_list() else {
            eprintln!("no readable /proc/timer_list (needs root); skipping");
            return;
        };
        let Ok(out) = std::process::Command::new("sh")
            .args(["-c", "zcat /proc/config.gz | grep '^CONFIG_HZ='"])
            .output()
        else {
            return;
        };
        let Some(want) = String::from_utf8_lossy(&out.stdout)
            .trim()
            .strip_prefix("CONFIG_HZ=")
            .and_then(|v| v.parse::<u32>().ok())
        else {
            eprintln!("no /proc/config.gz; skipping the comparison");
            return;
        };
        let est = (jiffies as f64 - 4_294_967_296.0) / (now - 300.0);
        if (now - 300.0).abs() >= 60.0 {
            assert_eq!(nearest(est), Some(want), "estimate {est}");
        }
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(kernel_hz(release.trim()), Ok(want));
    }
}
