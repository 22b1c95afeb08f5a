//! Turning the programs' `bpf_ktime_get_ns()` (`CLOCK_MONOTONIC`) stamps into nanoseconds
//! since the Unix epoch: an offset measured once at start, so timestamps never run backwards
//! even if the wall clock is stepped during a capture. The packet capture and the TLS uprobes
//! both use it, so their timestamps in one capture agree.

/// Converts `CLOCK_MONOTONIC` nanoseconds to Unix-epoch nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    /// `CLOCK_REALTIME - CLOCK_MONOTONIC`, nanoseconds.
    offset_ns: i128,
}

impl WallClock {
    /// Measures the offset now: the tightest of a few monotonic–realtime–monotonic readings.
    pub fn measure() -> Self {
        let mut best: Option<(i128, i128)> = None;
        for _ in 0..7 {
            let before = clock_ns(libc::CLOCK_MONOTONIC);
            let real = clock_ns(libc::CLOCK_REALTIME);
            let after = clock_ns(libc::CLOCK_MONOTONIC);
            let spread = after - before;
            let offset = real - (before + after) / 2;
            if best.is_none_or(|(s, _)| spread < s) {
                best = Some((spread, offset));
            }
        }
        WallClock {
            offset_ns: best.map_or(0, |(_, offset)| offset),
        }
    }

    /// A clock with a given offset (for tests).
    pub fn with_offset(offset_ns: i128) -> Self {
        WallClock { offset_ns }
    }

    /// The wall-clock time of monotonic time `mono_ns`.
    pub fn wall(&self, mono_ns: u64) -> u64 {
        let wall = i128::from(mono_ns) + self.offset_ns;
        u64::try_from(wall.max(0)).unwrap_or(u64::MAX)
    }
}

/// Reads clock `id` in nanoseconds.
fn clock_ns(id: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(id, &raw mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measured_offset_lands_near_now() {
        let clock = WallClock::measure();
        let now = clock_ns(libc::CLOCK_REALTIME);
        let wall = i128::from(clock.wall(u64::try_from(clock_ns(libc::CLOCK_MONOTONIC)).unwrap()));
        assert!((wall - now).abs() < 1_000_000_000, "{wall} vs {now}");
    }

    #[test]
    fn offsets_saturate() {
        assert_eq!(WallClock::with_offset(-10).wall(3), 0);
        assert_eq!(WallClock::with_offset(10).wall(3), 13);
        assert_eq!(
            WallClock::with_offset(i128::from(u64::MAX)).wall(3),
            u64::MAX
        );
    }
}
