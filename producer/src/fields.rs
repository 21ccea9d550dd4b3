//! What the `log` backend and the tracing layer share: per-thread buffers
//! reused by every record. (How fields are rendered is
//! [`ringflush_ring::fields`]: the flusher renders the tracing layer's.)

use std::cell::RefCell;

/// Buffers a record is assembled in. One set per thread, reused, so that a
/// record with fields allocates nothing once the thread's buffers have grown
/// to its size.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    /// The message, then (`log` backend) the fields as text.
    pub text: String,
    /// (`log` backend) The fields as a JSON object.
    pub json: String,
    /// (tracing layer) The fields as binary entries.
    pub entries: Vec<u8>,
    /// What goes before the message: span names and fields, a timestamp.
    pub prefix: String,
    /// A field taken from the fields (`log.target` of a bridged `log` record).
    pub target: String,
    /// Likewise `log.file`.
    pub file: String,
    /// Likewise `log.module_path`.
    pub module: String,
}

impl Buffers {
    pub fn clear(&mut self) {
        self.text.clear();
        self.json.clear();
        self.entries.clear();
        self.prefix.clear();
        self.target.clear();
        self.file.clear();
        self.module.clear();
    }
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// Run `f` with this thread's buffers, cleared. A record logged while
/// another is being assembled on the same thread (a `Debug` impl that logs)
/// gets fresh ones: correct, at the cost of an allocation.
#[inline]
pub(crate) fn with_buffers<R>(f: impl FnOnce(&mut Buffers) -> R) -> R {
    let mut f = Some(f);
    let done = BUFFERS.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut b) => {
            b.clear();
            Some((f.take().expect("called once"))(&mut b))
        }
        Err(_) => None,
    });
    match done {
        Ok(Some(r)) => r,
        // Nested on this thread, or the thread-local is being destroyed.
        _ => (f.take().expect("called once"))(&mut Buffers::default()),
    }
}

/// The current time as `2026-03-06T10:17:33.045Z` (UTC), for lines echoed
/// to stderr.
#[cfg(feature = "log")]
pub(crate) fn utc_now(out: &mut String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    utc(now.as_secs(), now.subsec_millis(), out);
}

#[cfg(feature = "log")]
fn utc(secs: u64, millis: u32, out: &mut String) {
    use std::fmt::Write as _;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        millis
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_use_gets_its_own_buffers() {
        with_buffers(|outer| {
            outer.text.push_str("outer");
            with_buffers(|inner| {
                assert!(inner.text.is_empty());
                inner.text.push_str("inner");
            });
            assert_eq!(outer.text, "outer");
        });
        with_buffers(|b| assert!(b.text.is_empty()));
    }

    #[cfg(feature = "log")]
    #[test]
    fn utc_dates() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00.007Z"),
            (951_782_400, "2000-02-29T00:00:00.007Z"),
            (1_709_720_253, "2024-03-06T10:17:33.007Z"),
            (4_107_542_399, "2100-02-28T23:59:59.007Z"),
        ] {
            let mut s = String::new();
            utc(secs, 7, &mut s);
            assert_eq!(s, want);
        }
        let mut s = String::new();
        utc_now(&mut s);
        assert_eq!(s.len(), 24, "{s}");
    }
}
