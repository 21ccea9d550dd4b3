//! A record's frame in the ring: the header in front of its payload (the
//! payload itself is `codec.rs`'s [`Record`](crate::codec::Record)).
//!
//! Every record starts 8-byte aligned with a 32-byte header of four words:
//!
//! | word | contents |
//! |------|----------|
//! | 0 | `tag:32 \| len:30 \| state:2`, the only word that changes state (atomic) |
//! | 1 | the record's claim position (u64) |
//! | 2 | writer pid (low 32 bits), flags (high 32 bits: [`FLAG_TSC`], [`FLAG_LANE_THREAD`], and the writer's registration tag from bit [`TAG_SHIFT`]) |
//! | 3 | timestamp: ns since the Unix epoch, or TSC ticks with [`FLAG_TSC`] |
//!
//! `tag` is `(pos >> 3) as u32`: a header is only valid at the position it was
//! claimed for, so a late commit to a reused slot fails its CAS and a scan for
//! the next valid header after garbage cannot be fooled by stale headers.
//! `len` counts header plus payload, unaligned; the record occupies
//! `align(len)` bytes. A padding record (state 3) has only word 0 and runs to
//! the end of the ring, so it fits in the smallest (8-byte) gap.

/// Bytes of the header that precedes every record's payload (four words).
pub const RECORD_HEADER_LEN: usize = 32;
/// Alignment in bytes of every record's start and of its space in the ring.
pub const ALIGN: u64 = 8;
/// Largest value of the 30-bit length field.
pub const MAX_LEN_FIELD: u64 = (1 << 30) - 1;

/// The state bits of word 0 (0 means no header written yet).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum State {
    /// A producer owns the record and is writing it.
    Claimed = 1,
    /// Published: the payload is complete and the consumer may read it.
    Committed = 2,
    /// Filler from here to the end of the ring (only word 0 is written).
    Padding = 3,
}

/// Round `len` up to the record alignment.
#[inline]
pub const fn align(len: u64) -> u64 {
    (len + ALIGN - 1) & !(ALIGN - 1)
}

/// The tag of a header valid at `pos`: bits 3 to 34 of the position (so it
/// repeats only every 32 GiB of ring traffic).
#[inline]
pub const fn tag(pos: u64) -> u32 {
    (pos >> 3) as u32
}

/// Pack word 0 of a record claimed at `pos` that is `len` bytes long
/// (header included; cut to the 30-bit field) and in `state`.
#[inline]
pub const fn encode_word0(pos: u64, len: u64, state: State) -> u64 {
    (tag(pos) as u64) << 32 | (len & MAX_LEN_FIELD) << 2 | state as u64
}

/// Decoded word 0: `(tag, len, state)`, or `None` when the state bits are 0.
#[inline]
pub const fn decode_word0(word: u64) -> Option<(u32, u64, State)> {
    let state = match word & 3 {
        1 => State::Claimed,
        2 => State::Committed,
        3 => State::Padding,
        _ => return None,
    };
    Some(((word >> 32) as u32, (word >> 2) & MAX_LEN_FIELD, state))
}

/// Word 3 holds raw TSC ticks, not realtime ns (see `tsc.rs`).
pub const FLAG_TSC: u32 = 1;

/// (5.0) A lane record whose payload leaves out thread id and name: they
/// are its lane's owner's (`LaneOwner::thread_name`), which the flusher
/// gives it. Set only by the log call's path in a lane.
pub const FLAG_LANE_THREAD: u32 = 2;

/// (3.0) Flags bits 16..32 hold the writer's registration tag
/// (`registry::tag`, 0 for a writer that is not registered): the flusher
/// asks the registry whether the writer of a stuck record lives.
pub const TAG_SHIFT: u32 = 16;

/// The flags of a record stamped by a writer with registration tag `tag`.
#[inline]
pub const fn flags_with_tag(flags: u32, tag: u16) -> u32 {
    flags | (tag as u32) << TAG_SHIFT
}

/// Pack word 2.
#[inline]
pub const fn encode_word2(pid: u32, flags: u32) -> u64 {
    (flags as u64) << 32 | pid as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word0_round_trips() {
        for (pos, len, state) in [
            (0, 32, State::Claimed),
            (8, 1 << 20, State::Committed),
            ((1 << 40) + 64, MAX_LEN_FIELD, State::Padding),
        ] {
            let w = encode_word0(pos, len, state);
            assert_ne!(w, 0);
            assert_eq!(decode_word0(w), Some((tag(pos), len, state)));
        }
        assert_eq!(decode_word0(0), None);
        assert_eq!(decode_word0(0xffff_0000_0000_0000), None);
    }

    #[test]
    fn tags_differ_between_laps_of_a_small_ring() {
        let cap = 64 * 1024;
        assert_ne!(tag(128), tag(128 + cap));
    }

    #[test]
    fn align_rounds_up_to_eight() {
        assert_eq!(align(32), 32);
        assert_eq!(align(33), 40);
        assert_eq!(align(1), 8);
    }
}
