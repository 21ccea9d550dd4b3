//! Broken-down civil time, as Python's `time.localtime` / `time.gmtime` give it.

/// A Unix time in a zone, with the fields CPython's rotation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Full year, e.g. 2024.
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
    /// Day of the month, 1 to 31.
    pub day: u32,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 59 (a leap second reads as 59).
    pub second: u32,
    /// 0 = Monday, as `tm_wday` in Python.
    pub weekday: u32,
    /// Daylight saving time in effect (`tm_isdst`).
    pub isdst: bool,
}

/// A time zone: Unix seconds to civil time.
pub trait Zone {
    /// The civil time in this zone at Unix time `t` (seconds).
    fn civil(&self, t: i64) -> Civil;
}

/// UTC (`--utc`, Python's `time.gmtime`).
#[derive(Debug, Clone, Copy, Default)]
pub struct UtcZone;

/// The process's local zone from `TZ` / `/etc/localtime`, through the C
/// library's `localtime_r` exactly as Python's `time.localtime` does.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalZone;

impl Zone for UtcZone {
    fn civil(&self, t: i64) -> Civil {
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            // 1970-01-01 was a Thursday (3).
            weekday: (days + 3).rem_euclid(7) as u32,
            isdst: false,
        }
    }
}

impl Zone for LocalZone {
    fn civil(&self, t: i64) -> Civil {
        let time = t as libc::time_t;
        // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the call; localtime_r is the
        // thread-safe variant and writes only into `tm`.
        let ok = unsafe { !libc::localtime_r(&time, &mut tm).is_null() };
        if !ok {
            return UtcZone.civil(t);
        }
        Civil {
            year: tm.tm_year + 1900,
            month: tm.tm_mon as u32 + 1,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec.min(59) as u32,
            weekday: ((tm.tm_wday + 6) % 7) as u32,
            isdst: tm.tm_isdst > 0,
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_civil_time() {
        // 2024-03-06 10:17:33 UTC, a Wednesday.
        let c = UtcZone.civil(1_709_720_253);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second, c.weekday),
            (2024, 3, 6, 10, 17, 33, 2)
        );
        assert_eq!(UtcZone.civil(0).weekday, 3);
        let c = UtcZone.civil(951_782_400); // 2000-02-29
        assert_eq!((c.year, c.month, c.day), (2000, 2, 29));
    }
}
