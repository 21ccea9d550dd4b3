//! Timestamps for the hot path.
//!
//! `clock_gettime(CLOCK_REALTIME)` costs about 25-30 ns even through the
//! vDSO; reading the TSC costs about 10. Like NanoLog and Quill, producers
//! stamp records with raw TSC ticks when the kernel itself trusts the TSC
//! (its clocksource is `tsc`, which Linux only keeps when the TSC is
//! invariant and synchronized across CPUs), and the flusher converts ticks to
//! wall time with a calibration it keeps against `CLOCK_REALTIME`. Elsewhere
//! producers fall back to `clock_gettime`. Record header word 2 carries a
//! flag saying which one a timestamp is.

use std::sync::atomic::{AtomicU8, Ordering};

/// Whether this machine's TSC can stamp records (cached after the first call).
pub fn tsc_usable() -> bool {
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let ok = cfg!(target_arch = "x86_64")
                && std::env::var_os("RINGFLUSH_NO_TSC").is_none()
                && std::fs::read_to_string(
                    "/sys/devices/system/clocksource/clocksource0/current_clocksource",
                )
                .is_ok_and(|s| s.trim() == "tsc");
            STATE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

/// Raw TSC ticks (0 off x86_64, where [`tsc_usable`] is false).
#[inline]
pub fn read_tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: rdtsc has no preconditions on x86_64.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// Converts TSC ticks to realtime ns. The rate is measured over an ever
/// longer baseline; the anchor is refreshed so that clock adjustments (NTP)
/// are followed.
#[derive(Debug, Clone)]
pub struct TscCalibration {
    first: (u64, u64),
    anchor: (u64, u64),
    ns_per_tick: f64,
}

fn sample() -> (u64, u64) {
    // Bracket the clock read between two TSC reads and keep the tightest.
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..5 {
        let a = read_tsc();
        let ns = crate::now_ns();
        let b = read_tsc();
        if b.wrapping_sub(a) < best.0 {
            best = (b.wrapping_sub(a), a + (b - a) / 2, ns);
        }
    }
    (best.1, best.2)
}

impl TscCalibration {
    /// Calibrate over `window` (the flusher uses 20 ms at start-up).
    pub fn new(window: std::time::Duration) -> Self {
        let first = sample();
        std::thread::sleep(window);
        let mut c = Self {
            first,
            anchor: first,
            ns_per_tick: 1.0,
        };
        c.refresh();
        c
    }

    /// Re-anchor at now and re-measure the rate since the first sample.
    pub fn refresh(&mut self) {
        let now = sample();
        let ticks = now.0.wrapping_sub(self.first.0);
        if ticks > 0 && now.1 > self.first.1 {
            self.ns_per_tick = (now.1 - self.first.1) as f64 / ticks as f64;
        }
        self.anchor = now;
    }

    /// Realtime ns of `tsc`.
    #[inline]
    pub fn to_ns(&self, tsc: u64) -> u64 {
        // i64 ticks span decades; f64 keeps ns exact over days of distance.
        let delta = tsc.wrapping_sub(self.anchor.0) as i64;
        let ns = self.anchor.1 as i64 + (delta as f64 * self.ns_per_tick) as i64;
        ns.max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrated_tsc_tracks_the_realtime_clock() {
        if !tsc_usable() {
            eprintln!("skipped: the clocksource is not tsc on this machine");
            return;
        }
        let cal = TscCalibration::new(std::time::Duration::from_millis(20));
        let (tsc, ns) = (read_tsc(), crate::now_ns());
        let diff = cal.to_ns(tsc) as i64 - ns as i64;
        // Well within a millisecond (log timestamps show milliseconds).
        assert!(diff.abs() < 200_000, "off by {diff} ns");
    }
}
