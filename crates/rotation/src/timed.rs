//! CPython 3.13 `TimedRotatingFileHandler`'s schedule and names.
//!
//! - `compute_rollover` is `computeRollover`: S/M/H/D add N units to `now`;
//!   MIDNIGHT and W0-W6 go to the next `at_time` (midnight by default,
//!   "r <= 0" meaning now at or past it moves a day on), then to the weekday
//!   for W, then N-1 more days/weeks, then correct by an hour when the UTC
//!   offset's DST state differs between `now` and the result.
//! - `suffix_for` is the name part of `doRollover`: strftime of
//!   `rollover_at - interval` with the DST shift CPython applies.
//! - `matches` is the retention pattern, extended with the `.N` collision
//!   index ringflush adds and a compression extension.

use crate::zone::{Civil, Zone};

const MIDNIGHT: i64 = 24 * 60 * 60;

/// The `when` of TimedRotatingFileHandler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// `S`: every `interval` seconds from now.
    Second,
    /// `M`: every `interval` minutes from now.
    Minute,
    /// `H`: every `interval` hours from now.
    Hour,
    /// `D`: every `interval` days (of 86 400 s) from now, not at midnight.
    Day,
    /// `MIDNIGHT`: at midnight (or `at_time`), every `interval` days.
    Midnight,
    /// `W0`-`W6`: on that weekday at midnight (or `at_time`), every
    /// `interval` weeks; 0 = Monday.
    Weekday(u32),
}

/// A `--when`, `--interval` or `--at-time` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(String);

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

/// A timed rotation policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timed {
    /// The unit and alignment of rollovers.
    pub when: When,
    /// The period in seconds (unit times the `--interval`).
    pub interval: i64,
    /// Seconds after midnight for MIDNIGHT and W rollovers.
    pub at_time: Option<i64>,
    /// The clock rollovers and names are read on.
    pub clock: Clock,
}

/// The clock a policy reads rollover times and rotated names on
/// (TimedRotatingFileHandler's `utc=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The local zone, with CPython's DST corrections.
    Local,
    /// UTC (`utc=True`): no DST corrections.
    Utc,
}

impl When {
    /// Parse `S M H D MIDNIGHT W0..W6`, case-insensitive.
    ///
    /// # Errors
    /// [`PolicyError`] for anything else.
    pub fn parse(s: &str) -> Result<Self, PolicyError> {
        let up = s.to_ascii_uppercase();
        Ok(match up.as_str() {
            "S" => When::Second,
            "M" => When::Minute,
            "H" => When::Hour,
            "D" => When::Day,
            "MIDNIGHT" => When::Midnight,
            w if w.len() == 2 && w.starts_with('W') && (b'0'..=b'6').contains(&w.as_bytes()[1]) => {
                When::Weekday((w.as_bytes()[1] - b'0') as u32)
            }
            _ => {
                return Err(PolicyError(format!(
                    "invalid --when {s:?}: use S, M, H, D, midnight or W0-W6 (0 is Monday)"
                )))
            }
        })
    }

    fn unit(self) -> i64 {
        match self {
            When::Second => 1,
            When::Minute => 60,
            When::Hour => 3600,
            When::Day | When::Midnight => MIDNIGHT,
            When::Weekday(_) => 7 * MIDNIGHT,
        }
    }

    fn aligned(self) -> bool {
        matches!(self, When::Midnight | When::Weekday(_))
    }
}

/// Parse `HH:MM[:SS]` into seconds after midnight.
pub fn parse_at_time(s: &str) -> Result<i64, PolicyError> {
    let err = || PolicyError(format!("invalid --at-time {s:?}: use HH:MM or HH:MM:SS"));
    let parts: Vec<&str> = s.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty() || p.len() > 2) {
        return Err(err());
    }
    let nums: Vec<i64> = parts
        .iter()
        .map(|p| p.parse::<i64>().map_err(|_| err()))
        .collect::<Result<_, _>>()?;
    let (h, m, sec) = (nums[0], nums[1], nums.get(2).copied().unwrap_or(0));
    if h > 23 || m > 59 || sec > 59 {
        return Err(PolicyError(format!(
            "invalid --at-time {s:?}: hours go to 23, minutes and seconds to 59"
        )));
    }
    Ok((h * 60 + m) * 60 + sec)
}

impl Timed {
    /// A policy rolling every `interval` units of `when`, at `at_time`
    /// (`HH:MM[:SS]`, for [`When::Midnight`] and [`When::Weekday`]), on
    /// `clock`.
    ///
    /// # Errors
    /// [`PolicyError`] when `interval` is 0 or `at_time` is not a valid
    /// `HH:MM` or `HH:MM:SS` time of day.
    pub fn new(
        when: When,
        interval: u32,
        at_time: Option<&str>,
        clock: Clock,
    ) -> Result<Self, PolicyError> {
        if interval == 0 {
            return Err(PolicyError("--interval must be at least 1".into()));
        }
        let at_time = at_time.map(parse_at_time).transpose()?;
        Ok(Self {
            when,
            interval: when.unit() * interval as i64,
            at_time,
            clock,
        })
    }

    /// [`Timed::compute_rollover`] in this policy's own zone: UTC on
    /// [`Clock::Utc`], else the local zone.
    pub fn next_rollover(&self, now: i64) -> i64 {
        if self.clock == Clock::Utc {
            self.compute_rollover(&crate::UtcZone, now)
        } else {
            self.compute_rollover(&crate::LocalZone, now)
        }
    }

    /// [`Timed::suffix_for`] in this policy's own zone.
    pub fn rotated_suffix(&self, rollover_at: i64, now: i64) -> String {
        if self.clock == Clock::Utc {
            self.suffix_for(&crate::UtcZone, rollover_at, now)
        } else {
            self.suffix_for(&crate::LocalZone, rollover_at, now)
        }
    }

    /// The strftime suffix CPython uses for this `when`.
    pub fn suffix_format(&self) -> &'static str {
        match self.when {
            When::Second => "%Y-%m-%d_%H-%M-%S",
            When::Minute => "%Y-%m-%d_%H-%M",
            When::Hour => "%Y-%m-%d_%H",
            _ => "%Y-%m-%d",
        }
    }

    /// `computeRollover(now)`: the instant of the next rollover.
    pub fn compute_rollover(&self, zone: &impl Zone, now: i64) -> i64 {
        if !self.when.aligned() {
            return now + self.interval;
        }
        let t = zone.civil(now);
        let rotate_ts = self.at_time.unwrap_or(MIDNIGHT);
        let mut r = rotate_ts - ((t.hour as i64 * 60 + t.minute as i64) * 60 + t.second as i64);
        let mut day = t.weekday as i64;
        if r <= 0 {
            r += MIDNIGHT;
            day = (day + 1) % 7;
        }
        let mut result = now + r;
        if let When::Weekday(d) = self.when {
            result += (d as i64 - day).rem_euclid(7) * MIDNIGHT;
            result += self.interval - MIDNIGHT * 7;
        } else {
            result += self.interval - MIDNIGHT;
        }
        if self.clock == Clock::Local {
            let dst_now = t.isdst;
            if dst_now != zone.civil(result).isdst {
                let addend = if !dst_now {
                    // DST starts before the rollover: deduct an hour, unless
                    // an hour earlier is not yet DST (CPython's check).
                    if zone.civil(result - 3600).isdst {
                        -3600
                    } else {
                        0
                    }
                } else {
                    3600
                };
                result += addend;
            }
        }
        result
    }

    /// The civil time whose strftime names the file closed by the rollover
    /// at `rollover_at`, done at `now` (CPython's `doRollover`).
    pub fn period_start(&self, zone: &impl Zone, rollover_at: i64, now: i64) -> Civil {
        let t = rollover_at - self.interval;
        let then = zone.civil(t);
        if self.clock == Clock::Utc {
            return then;
        }
        let dst_now = zone.civil(now).isdst;
        if dst_now != then.isdst {
            zone.civil(t + if dst_now { 3600 } else { -3600 })
        } else {
            then
        }
    }

    /// The suffix (without the leading dot) for the rollover at `rollover_at`.
    pub fn suffix_for(&self, zone: &impl Zone, rollover_at: i64, now: i64) -> String {
        self.format_suffix(&self.period_start(zone, rollover_at, now))
    }

    fn format_suffix(&self, c: &Civil) -> String {
        let date = format!("{:04}-{:02}-{:02}", c.year, c.month, c.day);
        match self.when {
            When::Second => format!("{date}_{:02}-{:02}-{:02}", c.hour, c.minute, c.second),
            When::Minute => format!("{date}_{:02}-{:02}", c.hour, c.minute),
            When::Hour => format!("{date}_{:02}", c.hour),
            _ => date,
        }
    }

    /// Whether `suffix` (what follows `base.`) names a backup of this policy:
    /// the date suffix, optionally `.N` (collision or size index), optionally
    /// a compression extension. Returns a sort key, oldest first.
    pub fn matches(&self, suffix: &str) -> Option<(String, u64)> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let mut rest = suffix;
        for ext in [".gz", ".zst"] {
            if let Some(r) = rest.strip_suffix(ext) {
                rest = r;
                break;
            }
        }
        let (date, index) = match rest.split_once('.') {
            Some((d, n)) if digits(n) => (d, n.parse().ok()?),
            Some(_) => return None,
            None => (rest, 0),
        };
        let shape: &[usize] = match self.when {
            When::Second => &[4, 2, 2, 2, 2, 2],
            When::Minute => &[4, 2, 2, 2, 2],
            When::Hour => &[4, 2, 2, 2],
            _ => &[4, 2, 2],
        };
        let fields: Vec<&str> = date.split(['-', '_']).collect();
        let separators_ok = date.bytes().filter(|&b| b == b'_').count()
            == usize::from(shape.len() > 3)
            && date.find('_').is_none_or(|i| i == 10);
        let ok = separators_ok
            && fields.len() == shape.len()
            && fields
                .iter()
                .zip(shape)
                .all(|(f, &n)| f.len() == n && digits(f));
        ok.then(|| (date.to_string(), index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::UtcZone;

    fn utc(s: &str) -> i64 {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp()
    }

    fn policy(when: &str, interval: u32, at: Option<&str>) -> Timed {
        Timed::new(When::parse(when).unwrap(), interval, at, Clock::Utc).unwrap()
    }

    /// The five cases ANCHORS.md gives, checked on CPython 3.13 (UTC, start
    /// Wednesday 2024-03-06 10:00).
    #[test]
    fn cpython_313_examples() {
        let start = utc("2024-03-06 10:00:00");
        let p = policy("midnight", 1, None);
        let at = p.compute_rollover(&UtcZone, start);
        assert_eq!(at, utc("2024-03-07 00:00:00"));
        assert_eq!(p.suffix_for(&UtcZone, at, at), "2024-03-06");

        let p = policy("MIDNIGHT", 2, None);
        let at = p.compute_rollover(&UtcZone, start);
        assert_eq!(at, utc("2024-03-08 00:00:00"));
        assert_eq!(p.suffix_for(&UtcZone, at, at), "2024-03-06");

        let p = policy("w2", 1, None);
        let at = p.compute_rollover(&UtcZone, start);
        assert_eq!(at, utc("2024-03-07 00:00:00"));
        assert_eq!(p.suffix_for(&UtcZone, at, at), "2024-02-29");
        let next = p.compute_rollover(&UtcZone, at);
        assert_eq!(next, utc("2024-03-14 00:00:00"));
        assert_eq!(p.suffix_for(&UtcZone, next, next), "2024-03-07");

        let p = policy("W2", 1, Some("09:00"));
        let at = p.compute_rollover(&UtcZone, start);
        assert_eq!(at, utc("2024-03-13 09:00:00"));
        assert_eq!(p.suffix_for(&UtcZone, at, at), "2024-03-06");

        let p = policy("H", 1, None);
        let at = p.compute_rollover(&UtcZone, utc("2024-03-06 10:17:33"));
        assert_eq!(at, utc("2024-03-06 11:17:33"));
        assert_eq!(p.suffix_for(&UtcZone, at, at), "2024-03-06_10");
    }

    #[test]
    fn unaligned_units_and_intervals() {
        let now = utc("2024-03-06 10:17:33");
        for (when, n, secs, suffix) in [
            ("S", 5, 5, "2024-03-06_10-17-33"),
            ("M", 2, 120, "2024-03-06_10-17"),
            ("H", 3, 3 * 3600, "2024-03-06_10"),
            ("D", 2, 2 * 86400, "2024-03-06"),
        ] {
            let p = policy(when, n, None);
            let at = p.compute_rollover(&UtcZone, now);
            assert_eq!(at, now + secs, "{when}");
            assert_eq!(p.suffix_for(&UtcZone, at, at), suffix, "{when}");
        }
    }

    #[test]
    fn at_time_before_and_after_now_and_exactly_now() {
        let p = policy("midnight", 1, Some("09:30"));
        assert_eq!(
            p.compute_rollover(&UtcZone, utc("2024-03-06 08:00:00")),
            utc("2024-03-06 09:30:00")
        );
        assert_eq!(
            p.compute_rollover(&UtcZone, utc("2024-03-06 10:00:00")),
            utc("2024-03-07 09:30:00")
        );
        // r <= 0 (3.13): exactly at the time moves to the next day.
        assert_eq!(
            p.compute_rollover(&UtcZone, utc("2024-03-06 09:30:00")),
            utc("2024-03-07 09:30:00")
        );
    }

    #[test]
    fn weekly_with_interval_and_every_weekday() {
        // Wednesday 10:00; W0 (Monday) -> end of Monday = Tuesday 00:00.
        let start = utc("2024-03-06 10:00:00");
        for (d, expect) in [
            (0, "2024-03-12 00:00:00"),
            (1, "2024-03-13 00:00:00"),
            (2, "2024-03-07 00:00:00"),
            (3, "2024-03-08 00:00:00"),
            (6, "2024-03-11 00:00:00"),
        ] {
            let p = policy(&format!("W{d}"), 1, None);
            assert_eq!(p.compute_rollover(&UtcZone, start), utc(expect), "W{d}");
        }
        let p = policy("W2", 2, None);
        assert_eq!(
            p.compute_rollover(&UtcZone, start),
            utc("2024-03-14 00:00:00")
        );
    }

    #[test]
    fn bad_options_are_rejected() {
        assert!(When::parse("W7").is_err());
        assert!(When::parse("fortnight").is_err());
        assert!(Timed::new(When::Hour, 0, None, Clock::Utc).is_err());
        for bad in ["25:00", "9", "09:60", "aa:bb", "1:2:3:4"] {
            assert!(parse_at_time(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_at_time("09:30:15"), Ok(34215));
        // In the right shape but out of range: the message says which.
        let err = parse_at_time("25:00").unwrap_err().to_string();
        assert!(err.contains("hours go to 23"), "{err}");
    }

    #[test]
    fn retention_pattern_accepts_backups_only() {
        let p = policy("S", 1, None);
        assert_eq!(
            p.matches("2024-03-06_10-17-33"),
            Some(("2024-03-06_10-17-33".into(), 0))
        );
        assert_eq!(
            p.matches("2024-03-06_10-17-33.2.gz"),
            Some(("2024-03-06_10-17-33".into(), 2))
        );
        assert_eq!(p.matches("2024-03-06"), None);
        assert_eq!(p.matches("2024-03-06_10-17-33.bak"), None);
        let d = policy("midnight", 1, None);
        assert_eq!(d.matches("2024-03-06.zst"), Some(("2024-03-06".into(), 0)));
        assert_eq!(d.matches("2024-03-06_10"), None);
        assert_eq!(d.matches("20240306"), None);
    }

    /// DST in a named zone, with chrono-tz standing in for localtime.
    struct Named(chrono_tz::Tz);
    impl Zone for Named {
        fn civil(&self, t: i64) -> Civil {
            use chrono::{Datelike, TimeZone, Timelike};
            use chrono_tz::OffsetComponents;
            let dt = self.0.timestamp_opt(t, 0).unwrap();
            Civil {
                year: dt.year(),
                month: dt.month(),
                day: dt.day(),
                hour: dt.hour(),
                minute: dt.minute(),
                second: dt.second(),
                weekday: dt.weekday().num_days_from_monday(),
                isdst: !dt.offset().dst_offset().is_zero(),
            }
        }
    }

    #[test]
    fn midnight_across_dst_changes_in_berlin() {
        let zone = Named(chrono_tz::Europe::Berlin);
        let local = |s: &str| {
            use chrono::TimeZone;
            let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
            chrono_tz::Europe::Berlin
                .from_local_datetime(&naive)
                .unwrap()
                .timestamp()
        };
        let p = Timed::new(When::Midnight, 1, None, Clock::Local).unwrap();
        // 2024-03-31 02:00 CET -> 03:00 CEST. From Saturday noon, the next
        // local midnight is Sunday 00:00 (no change yet), then Monday 00:00.
        let sat = local("2024-03-30 12:00:00");
        let at = p.compute_rollover(&zone, sat);
        assert_eq!(at, local("2024-03-31 00:00:00"));
        let at2 = p.compute_rollover(&zone, at);
        assert_eq!(at2, local("2024-04-01 00:00:00"));
        assert_eq!(p.suffix_for(&zone, at2, at2), "2024-03-31");
        // 2024-10-27 03:00 CEST -> 02:00 CET: a 25-hour day.
        let at = p.compute_rollover(&zone, local("2024-10-27 00:00:00"));
        assert_eq!(at, local("2024-10-28 00:00:00"));
        assert_eq!(p.suffix_for(&zone, at, at), "2024-10-27");
    }

    /// DST in New York, where the cases below need a one-hour format.
    fn new_york(s: &str) -> i64 {
        use chrono::TimeZone;
        let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        chrono_tz::America::New_York
            .from_local_datetime(&naive)
            .earliest()
            .unwrap()
            .timestamp()
    }

    /// CPython's `result - 3600` check: a rollover computed inside the
    /// first hour of DST is not moved back an hour into standard time.
    #[test]
    fn a_rollover_in_the_first_hour_of_dst_stays_there() {
        let zone = Named(chrono_tz::America::New_York);
        // 2024-03-10 02:00 EST -> 03:00 EDT; at 02:30 (fixed seconds from
        // Saturday noon EST) falls on 03:30 EDT, whose hour before is EST.
        let p = Timed::new(When::Midnight, 1, Some("02:30"), Clock::Local).unwrap();
        let at = p.compute_rollover(&zone, new_york("2024-03-09 12:00:00"));
        assert_eq!(at, new_york("2024-03-10 03:30:00"));
        // Later in the day the correction applies: 04:30 EDT -> 03:30 EDT.
        let p = Timed::new(When::Midnight, 1, Some("03:30"), Clock::Local).unwrap();
        let at = p.compute_rollover(&zone, new_york("2024-03-09 12:00:00"));
        assert_eq!(at, new_york("2024-03-10 03:30:00"));
    }

    /// doRollover's name after DST ended: the period that began in DST is
    /// named an hour earlier (`t - 3600`), as CPython names it.
    #[test]
    fn a_period_that_began_in_dst_is_named_as_cpython_names_it() {
        let zone = Named(chrono_tz::America::New_York);
        // 2024-11-03 02:00 EDT -> 01:00 EST. The hourly rollover at 01:30
        // EST closes the period that began at 01:30 EDT.
        let p = Timed::new(When::Hour, 1, None, Clock::Local).unwrap();
        let at = new_york("2024-11-03 01:30:00") + 3600; // 01:30 EST
        assert_eq!(p.suffix_for(&zone, at, at), "2024-11-03_00");
        // Into DST: the period began at 01:30 EST and CPython names it by
        // `t + 3600`, 03:30 EDT (no file is named for the skipped 02:xx).
        let at = new_york("2024-03-10 03:30:00");
        assert_eq!(p.suffix_for(&zone, at, at), "2024-03-10_03");
    }

    #[test]
    fn an_at_time_with_seconds_counts_them() {
        let p = policy("midnight", 1, Some("09:30"));
        assert_eq!(
            p.compute_rollover(&UtcZone, utc("2024-03-06 08:00:17")),
            utc("2024-03-06 09:30:00")
        );
    }

    #[test]
    fn at_time_limits_are_inclusive() {
        for (ok, secs) in [
            ("23:59:59", 86399),
            ("00:00", 0),
            ("9:05", 32700),
            ("00:59", 3540),
        ] {
            assert_eq!(parse_at_time(ok), Ok(secs), "{ok}");
        }
        for bad in [
            "24:00", "00:60", "00:00:60", "00:00:61", "09:005", "123:00", "09:",
        ] {
            let err = parse_at_time(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid --at-time"),
                "{bad}: {err}"
            );
        }
        let err = When::parse("W7").unwrap_err().to_string();
        assert!(err.starts_with("invalid --when \"W7\""), "{err}");
    }

    /// The policy's own zone: UTC on `Clock::Utc`, else the local zone.
    #[test]
    fn next_rollover_and_rotated_suffix_use_the_policys_zone() {
        let now = utc("2024-03-06 10:17:33");
        for clock in [Clock::Utc, Clock::Local] {
            let p = Timed::new(When::Midnight, 1, None, clock).unwrap();
            let (at, name) = if clock == Clock::Utc {
                let at = p.compute_rollover(&UtcZone, now);
                (at, p.suffix_for(&UtcZone, at, at))
            } else {
                let at = p.compute_rollover(&crate::LocalZone, now);
                (at, p.suffix_for(&crate::LocalZone, at, at))
            };
            assert_eq!(p.next_rollover(now), at);
            assert_eq!(p.rotated_suffix(at, at), name);
            assert!(at > now);
            assert_eq!(name.len(), 10, "{name}");
        }
    }

    /// `suffix_format` is the strftime of the names `suffix_for` makes.
    #[test]
    fn suffix_format_is_the_strftime_of_the_names() {
        let now = utc("2024-03-06 10:17:33");
        for when in ["S", "M", "H", "D", "midnight", "W3"] {
            let p = policy(when, 1, None);
            let at = p.compute_rollover(&UtcZone, now);
            let start = chrono::DateTime::from_timestamp(at - p.interval, 0).unwrap();
            let expected = start.format(p.suffix_format()).to_string();
            assert_eq!(p.suffix_for(&UtcZone, at, at), expected, "{when}");
            // And the retention pattern takes each name back.
            assert_eq!(p.matches(&expected), Some((expected.clone(), 0)), "{when}");
        }
    }

    #[test]
    fn retention_pattern_refuses_near_misses() {
        let s = policy("S", 1, None);
        assert_eq!(s.matches("2024-03-06-10-17-33"), None);
        assert_eq!(s.matches("2024_03-06-10-17-33"), None);
        let m = policy("M", 1, None);
        assert_eq!(m.matches("2024-03-06_10-17-33"), None);
        let h = policy("H", 1, None);
        assert_eq!(h.matches("2024-03-06_10-17"), None);
        let d = policy("midnight", 1, None);
        assert_eq!(d.matches("abcd-ef-gh"), None);
        assert_eq!(d.matches("24-03-06"), None);
        assert_eq!(d.matches("2024-003-6"), None);
        assert_eq!(d.matches("2024-03-06."), None);
        assert_eq!(d.matches("2024-03-06.1.gz"), Some(("2024-03-06".into(), 1)));
    }
}
