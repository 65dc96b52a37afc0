//! The templates' timestamps on the wall clock.
//!
//! A template stamps each event it sends to userspace with
//! `bpf_ktime_get_ns()`, which is `ktime_get_mono_fast_ns()` in the kernel
//! (`kernel/bpf/helpers.c`): CLOCK_MONOTONIC, which does not advance while
//! the machine is suspended (that would be CLOCK_BOOTTIME,
//! `bpf_ktime_get_boot_ns`). So the offset that turns an event's `ktime`
//! into wall-clock time is CLOCK_REALTIME − CLOCK_MONOTONIC, measured once
//! at start ([`Clock::measure`]) and applied to every event.
//!
//! The two clocks tick together (NTP slews both), so the offset stays put
//! unless the wall clock is *stepped* (`date -s`, a first NTP sync, a leap
//! second) while tcpq runs: events after a step are off by the step, as
//! with every tracer that converts once (bpftrace's `strftime` also keeps
//! the boot time it read at start).
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Samples taken by [`Clock::measure`]; the tightest one wins.
const SAMPLES: usize = 7;

/// CLOCK_REALTIME − CLOCK_MONOTONIC, and how well it is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Nanoseconds to add to a CLOCK_MONOTONIC time for the wall clock.
    pub offset_ns: i128,
    /// Half the gap between the two wall-clock reads around the monotonic
    /// read of the sample used: the offset is within this of the truth
    /// (plus the few nanoseconds by which the kernel's NMI-safe fast clock
    /// may differ from `clock_gettime` across a timekeeping update).
    pub error_ns: u64,
}

impl Clock {
    /// Measure the offset: read CLOCK_REALTIME, CLOCK_MONOTONIC,
    /// CLOCK_REALTIME back to back a few times (vDSO calls, tens of
    /// nanoseconds each) and keep the sample whose two wall-clock reads are
    /// closest, taking the monotonic read as their midpoint.
    pub fn measure() -> Clock {
        let mut best: Option<Clock> = None;
        for _ in 0..SAMPLES {
            let r0 = realtime_ns();
            let m = i128::from(monotonic_ns());
            let r1 = realtime_ns();
            // A step of the wall clock between the reads shows as a
            // negative or huge gap; such a sample never wins.
            let gap = r1 - r0;
            if gap < 0 {
                continue;
            }
            let c = Clock {
                offset_ns: r0 + gap / 2 - m,
                error_ns: u64::try_from((gap + 1) / 2).unwrap_or(u64::MAX),
            };
            if best.is_none_or(|b| c.error_ns < b.error_ns) {
                best = Some(c);
            }
        }
        best.unwrap_or(Clock {
            offset_ns: realtime_ns() - i128::from(monotonic_ns()),
            error_ns: u64::MAX,
        })
    }

    /// A clock with a known offset (tests, replays).
    pub fn with_offset(offset_ns: i128) -> Clock {
        Clock {
            offset_ns,
            error_ns: 0,
        }
    }

    /// The wall clock at CLOCK_MONOTONIC time `ktime_ns`, in nanoseconds
    /// since the Unix epoch (0 for a time before it).
    pub fn wall_ns(&self, ktime_ns: u64) -> u64 {
        let t = i128::from(ktime_ns) + self.offset_ns;
        u64::try_from(t.max(0)).unwrap_or(u64::MAX)
    }

    /// [`Clock::wall_ns`] as a `SystemTime`.
    pub fn wall(&self, ktime_ns: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.wall_ns(ktime_ns))
    }
}

fn gettime(clock: libc::clockid_t) -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_REALTIME and
    // CLOCK_MONOTONIC exist on every Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts
}

/// CLOCK_MONOTONIC now, in nanoseconds: the clock of the templates'
/// `bpf_ktime_get_ns()`.
pub fn monotonic_ns() -> u64 {
    let ts = gettime(libc::CLOCK_MONOTONIC);
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

fn realtime_ns() -> i128 {
    let ts = gettime(libc::CLOCK_REALTIME);
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// The time zone of a text `TIME` column (`-T`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    /// The machine's local time (`TZ`, `/etc/localtime`), as tcpdump and
    /// BCC's tools print it.
    Local,
    /// A fixed offset east of UTC, in seconds (tests; `0` is UTC).
    Fixed(i32),
}

impl Zone {
    /// Seconds east of UTC at `unix_secs`.
    pub fn offset_at(&self, unix_secs: i64) -> i64 {
        match *self {
            Zone::Fixed(s) => i64::from(s),
            Zone::Local => {
                // `as _`: localtime_r's `time_t` (libc deprecates naming
                // it for musl, whose time_t is 64 bits like glibc's here).
                let t = unix_secs as _;
                // SAFETY: an all-zero `tm` is a valid value to overwrite.
                let mut tm: libc::tm = unsafe { std::mem::zeroed() };
                // SAFETY: both pointers are valid for the call;
                // localtime_r is the thread-safe form.
                if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
                    0
                } else {
                    tm.tm_gmtoff
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_measured_tightly_and_converts_now() {
        let c = Clock::measure();
        // Back-to-back vDSO reads: far below a millisecond, even in a VM.
        assert!(c.error_ns < 1_000_000, "{c:?}");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128;
        let converted = i128::from(c.wall_ns(monotonic_ns()));
        assert!((converted - now).abs() < 5_000_000, "{converted} vs {now}");
    }

    #[test]
    fn conversion_is_one_offset() {
        let c = Clock::with_offset(1_000_000_000_000_000_000);
        assert_eq!(c.wall_ns(5), 1_000_000_000_000_000_005);
        assert_eq!(Clock::with_offset(-10).wall_ns(5), 0);
        assert_eq!(Zone::Fixed(3600).offset_at(0), 3600);
    }
}
