//! Arbitrary bytes in the ring (a buggy or hostile producer) never make the
//! consumer read out of bounds, panic or loop: proptest over whole ring
//! images, with plausible-looking headers planted among random bytes, driven
//! through the same consumer steps the flusher takes, payloads decoded and
//! formatted. Failing cases are kept in proptest-regressions/ and replayed.

use std::sync::atomic::Ordering;

use proptest::prelude::*;
use ringflush_format::{Entry, FormatSpec, Formatter};
use ringflush_ring::codec::Record;
use ringflush_ring::frame::{self, State};
use ringflush_ring::{HeapRegion, Region, Ring, SegmentHeader, Stop};

const CAP: u64 = 4096;

fn state(n: u8) -> State {
    match n % 3 {
        0 => State::Claimed,
        1 => State::Committed,
        _ => State::Padding,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn consumer_survives_any_ring_image(
        words in proptest::collection::vec(any::<u64>(), (CAP / 8) as usize),
        planted in proptest::collection::vec((0u64..CAP / 8, any::<u8>(), 0u64..2048, any::<bool>()), 0..40),
        head in (0u64..1 << 24).prop_map(|h| h * 8),
        used in (0u64..=CAP / 8).prop_map(|u| u * 8),
        max_record in prop_oneof![Just(256u64), Just(1024u64)],
    ) {
        let h = SegmentHeader::default();
        h.identity.max_record.store(max_record, Ordering::Relaxed);
        h.head.0.store(head, Ordering::Relaxed);
        h.tail.0.store(head + used, Ordering::Relaxed);
        let region = HeapRegion::new(CAP);
        for (i, w) in words.iter().enumerate() {
            region.word(i * 8).store(*w, Ordering::Relaxed);
        }
        // Headers that pass some checks and fail others.
        for (slot, st, len, right_pos) in planted {
            let off = slot * 8;
            let pos = head - (head % CAP) + off + if off < head % CAP { CAP } else { 0 };
            let claimed_pos = if right_pos { pos } else { pos ^ 8 };
            region.word(off as usize).store(frame::encode_word0(claimed_pos, len, state(st)), Ordering::Relaxed);
            if off + 8 < CAP {
                region.word(off as usize + 8).store(claimed_pos, Ordering::Relaxed);
            }
            // Half of them carry a well-formed payload, so decoding and
            // formatting run on real records too.
            let payload = len.saturating_sub(32) as usize;
            if st & 4 == 0 && payload >= 48 && off + len <= CAP {
                let msg = vec![b'm'; payload - 48];
                let rec = Record { level: st, logger: b"fuzz", thread_name: b"t1", message: &msg, ..Record::default() };
                let enc = rec.fit(payload).unwrap();
                let mut buf = vec![0u8; payload.div_ceil(8) * 8];
                rec.encode(&enc, &mut buf[..enc.len]);
                for (i, chunk) in buf.chunks(8).enumerate() {
                    let at = off as usize + 32 + i * 8;
                    if at + 8 <= CAP as usize {
                        region.word(at).store(u64::from_ne_bytes(chunk.try_into().unwrap()), Ordering::Relaxed);
                    }
                }
            }
        }
        let ring = Ring::new(&h, region);
        let mut fmt = Formatter::new(&FormatSpec::default(), 0).unwrap();
        let mut json = Formatter::new(&FormatSpec { format: Some("json".into()), ..FormatSpec::default() }, 0).unwrap();
        let mut out = Vec::new();
        // SAFETY: the only consumer of this ring.
        let mut c = unsafe { ring.consumer() };
        let tail = head + used;
        for _ in 0..10_000 {
            let before = c.position();
            let stop = c.drain(CAP, |r| {
                assert!(r.pos >= head && r.pos < tail);
                if let Ok(record) = Record::decode(r.payload) {
                    let e = Entry { created_ns: r.stamp.timestamp, pid: r.stamp.pid, record };
                    fmt.format(&e, &mut out);
                    json.format(&e, &mut out);
                }
                out.clear();
                true
            });
            assert!(c.position() <= tail, "read past the tail");
            // What the flusher does once its timeouts expire.
            let moved = match stop {
                Stop::Budget | Stop::Visitor => true,
                Stop::Claimed(_) => c.abandon_claimed().is_some(),
                Stop::Empty => c.abandon_unwritten().is_some(),
                Stop::Corrupt(_) => c.skip_corrupt().is_some() || {
                    let rest = c.tail() - c.position();
                    c.skip(rest);
                    rest > 0
                },
            };
            assert!(c.position() <= tail, "skipped past the tail");
            c.release();
            if c.position() == tail || (!moved && c.position() == before) {
                break;
            }
        }
        prop_assert!(c.position() <= tail);
    }
}

/// Valid-looking binary field entries (kinds, names, lengths) mixed with
/// random bytes, as a buggy or hostile producer could leave them in
/// `extra`.
fn entry_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        // kind, a short name, an 8-byte value or a short text
        (1u8..=11, "[a-z.]{0,6}", any::<u64>()).prop_map(|(kind, name, v)| {
            let mut b = vec![kind];
            b.extend_from_slice(&(name.len() as u16).to_le_bytes());
            b.extend_from_slice(name.as_bytes());
            b.extend_from_slice(&v.to_le_bytes());
            b
        }),
        proptest::collection::vec(any::<u8>(), 0..12),
        Just(vec![8u8]),
        Just(vec![10u8]),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Whatever follows the binary fields' magic byte, formatting never
    /// panics, writes a line (one valid JSON line in JSON), and at most a bounded multiple of
    /// the record's bytes (a malformed list cannot amplify a record).
    #[test]
    fn any_binary_fields_format_as_one_bounded_line(
        body in entry_bytes(),
        flags in any::<u8>(),
        message in "[ -~]{0,64}",
        json in any::<bool>(),
    ) {
        let mut extra = vec![ringflush_ring::fields::binary::MAGIC, flags];
        extra.extend_from_slice(&body);
        let spec = FormatSpec {
            format: Some(if json { "json" } else { "%(message)s" }.to_string()),
            ..FormatSpec::default()
        };
        let mut formatter = Formatter::new(&spec, 0).unwrap();
        let mut out = Vec::new();
        formatter.format(
            &Entry {
                created_ns: 1,
                pid: 1,
                record: Record {
                    message: message.as_bytes(),
                    extra: &extra,
                    ..Record::default()
                },
            },
            &mut out,
        );
        prop_assert!(out.ends_with(b"\n"));
        prop_assert!(
            out.len() <= 400 + 12 * (extra.len() + message.len()),
            "{} bytes from {} + {}", out.len(), extra.len(), message.len()
        );
        if json {
            // (Text formats write a field's newlines as they are, like a
            // message's, unless --escape; JSON never does.)
            prop_assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok(), "{}", String::from_utf8_lossy(&out));
        }
    }
}
