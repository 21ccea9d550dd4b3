//! The lanes' boundaries: owner words, first choices, records that end a
//! chunk exactly, and the reader's checks of a hostile tail, chunk table or
//! frame. Each test pins a bound a mutation run found unguarded.

use super::tests::{header, write, CHUNK};
use super::*;
use crate::HeapRegion;

type TestLanes<'a> = Lanes<&'a SegmentHeader, &'a HeapRegion>;

/// Drain, release and recycle `lane`, whose writer is done.
fn recycle(lanes: &TestLanes<'_>, lane: usize) {
    // SAFETY: the test is the one consumer, and the lane's writer is done.
    let mut r = unsafe { lanes.reader(lane) };
    while let Some(p) = r.peek(lanes).unwrap() {
        r.advance(&p);
    }
    r.release(lanes);
    // SAFETY: the lane's writer is done (the caller's word).
    let abandoned = unsafe { r.recycle(lanes) };
    assert!(!abandoned);
}

#[test]
fn accessors_report_what_was_written() {
    let h = header(2, 8);
    let region = HeapRegion::new(8 * CHUNK);
    let lanes = Lanes::new(&*h, &region);
    assert_eq!((lanes.count(), lanes.chunk_count()), (2, 8));
    assert!(format!("{lanes:?}").contains("chunk_size: 256"));
    let mut w = lanes.claim(7, 1, 1235).unwrap();
    let lane = w.lane();
    assert_eq!((lane, lanes.thread_id(lane)), (1, 1235));
    assert!(std::ptr::eq(lanes.header(), &*h));
    write(&mut w, &lanes, 3, 60).unwrap();
    write(&mut w, &lanes, 4, 61).unwrap();
    let written = 2 * frame::align(RECORD_HEADER_LEN as u64 + 60);
    assert_eq!(lanes.tail(lane), written);
    assert_eq!(lanes.pending(lane), written);
    assert_eq!(w.published(&lanes), written);
    assert!(w.still_owned(&lanes) && !w.drained(&lanes));
    // SAFETY: the test is the one consumer.
    let mut r = unsafe { lanes.reader(lane) };
    assert_eq!((r.lane(), r.position()), (lane, 0));
    // SAFETY: a reader of the other lane, which nobody reads.
    assert_eq!(unsafe { lanes.reader(0) }.lane(), 0);
    let p = r.peek(&lanes).unwrap().unwrap();
    assert_eq!(r.view(&lanes, &p, |b| b.to_vec()), vec![3; 60]);
    r.advance(&p);
    assert_eq!(r.position(), frame::align(RECORD_HEADER_LEN as u64 + 60));
    let p = r.peek(&lanes).unwrap().unwrap();
    assert_eq!(r.view(&lanes, &p, |b| b.len()), 61);
    r.advance(&p);
    // Read again from the head, as after a failed write of the batch.
    r.rewind();
    assert_eq!(r.position(), 0);
    assert_eq!(r.peek(&lanes).unwrap().unwrap().pos, 0);
    r.skip_to(written);
    r.release(&lanes);
    assert!(w.drained(&lanes));
    assert_eq!(lanes.pending(lane), 0);
}

#[test]
fn a_stale_release_leaves_a_later_claim_by_the_same_process_alone() {
    let h = header(2, 8);
    let region = HeapRegion::new(8 * CHUNK);
    let lanes = Lanes::new(&*h, &region);
    // Claim numbers that agree in their low bit and in bit 30: a claim
    // number cut to fewer bits, or shifted away, makes the words equal.
    let first = lanes.claim(7, 5, 100).unwrap();
    write(&mut first.clone(), &lanes, 1, 10).unwrap();
    first.release(&lanes);
    assert_eq!(
        lanes.owner(first.lane()),
        Owner::Released { registration: 7 }
    );
    recycle(&lanes, first.lane());
    assert_eq!(lanes.owner(first.lane()), Owner::Free);
    let second = lanes.claim(7, 7, 100).unwrap();
    assert_eq!(second.lane(), first.lane());
    first.release(&lanes);
    assert!(!first.still_owned(&lanes));
    assert!(second.still_owned(&lanes));
    assert_eq!(lanes.owner(second.lane()), Owner::Owned { registration: 7 });
    // A claim number beyond its 30 bits does not reach the state bits.
    let big = lanes.claim(8, (1 << 31) | 3, 101).unwrap();
    assert_eq!(lanes.owner(big.lane()), Owner::Owned { registration: 8 });
}

#[test]
fn a_clobbered_owner_word_reads_as_released_not_free() {
    let h = header(2, 8);
    let region = HeapRegion::new(8 * CHUNK);
    let lanes = Lanes::new(&*h, &region);
    lanes.control(1).owner.owner.store(5, Ordering::Relaxed);
    assert_eq!(lanes.owner(1), Owner::Released { registration: 5 });
    assert_eq!(lanes.owner(0), Owner::Free);
}

/// Threads spread over the lanes (so that they rarely race for one), and
/// lanes over the pool, from a first choice that depends on the thread.
#[test]
fn first_choices_of_lane_and_chunk_follow_the_thread_and_the_lane() {
    let h = header(8, 8);
    let region = HeapRegion::new(8 * CHUNK);
    let lanes = Lanes::new(&*h, &region);
    let mut w = lanes.claim(7, 1, 3).unwrap();
    assert_eq!(w.lane(), 3 * 7 % 8);
    assert_eq!(lanes.claim(7, 2, 3).unwrap().lane(), 6);
    write(&mut w, &lanes, 1, 10).unwrap();
    assert_eq!(lanes.chunk_of(5, 0), Some(5 * 3 % 8));
}

#[test]
fn a_record_that_ends_a_chunk_exactly_stays_in_it() {
    let h = header(2, 8);
    let region = HeapRegion::new(8 * CHUNK);
    let lanes = Lanes::new(&*h, &region);
    let mut w = lanes.claim(7, 1, 100).unwrap();
    let half = CHUNK as usize / 2 - RECORD_HEADER_LEN;
    write(&mut w, &lanes, 1, half).unwrap();
    write(&mut w, &lanes, 2, half).unwrap();
    assert_eq!(lanes.chunks_held(), 1);
    // As large as a chunk: taken; larger, or shorter than a header: not.
    write(&mut w, &lanes, 3, CHUNK as usize - RECORD_HEADER_LEN).unwrap();
    assert_eq!(lanes.chunks_held(), 2);
    let too_large = w.reserve(&lanes, CHUNK as usize + 8);
    assert_eq!(too_large.err(), Some(LaneFull::TooLarge));
    assert_eq!(w.reserve(&lanes, 8).err(), Some(LaneFull::TooLarge));
    write(&mut w, &lanes, 4, 0).unwrap();
}

/// A lane with record 1 (100 B payload) at 0, padding at 136 and record 2
/// (200 B) in the next chunk, from 256; its tail set to `tail`.
fn padded(h: &SegmentHeader, region: &HeapRegion, tail: Option<u64>) -> usize {
    let lanes = Lanes::new(h, region);
    let mut w = lanes.claim(7, 1, 100).unwrap();
    write(&mut w, &lanes, 1, 100).unwrap();
    write(&mut w, &lanes, 2, 200).unwrap();
    if let Some(t) = tail {
        lanes
            .control(w.lane())
            .tail
            .tail
            .store(t, Ordering::Relaxed);
    }
    w.lane()
}

/// The reader's results, record by record, up to the first `None` or error.
fn read_all(lanes: &TestLanes<'_>, lane: usize) -> Vec<Result<u64, Corruption>> {
    // SAFETY: the test is the one consumer.
    let mut r = unsafe { lanes.reader(lane) };
    let mut seen = Vec::new();
    loop {
        match r.peek(lanes) {
            Ok(Some(p)) => {
                seen.push(Ok(p.pos));
                r.advance(&p);
            }
            Ok(None) => return seen,
            Err(e) => {
                seen.push(Err(e));
                return seen;
            }
        }
    }
}

#[test]
fn a_tail_inside_or_at_the_end_of_a_padding_frame() {
    let h = header(2, 8);
    let region = HeapRegion::new(8 * CHUNK);
    // At the padding's end: nothing more to read yet (the next record is
    // published with its tail).
    let lane = padded(&h, &region, Some(CHUNK));
    assert_eq!(read_all(&Lanes::new(&*h, &region), lane), [Ok(0)]);
    // Inside it: a tail no writer publishes.
    let (h, region) = (header(2, 8), HeapRegion::new(8 * CHUNK));
    let lane = padded(&h, &region, Some(200));
    let lanes = Lanes::new(&*h, &region);
    assert_eq!(read_all(&lanes, lane), [Ok(0), Err(Corruption::BeyondTail)]);
    // Unclobbered: both records.
    let (h, region) = (header(2, 8), HeapRegion::new(8 * CHUNK));
    let lane = padded(&h, &region, None);
    assert_eq!(
        read_all(&Lanes::new(&*h, &region), lane),
        [Ok(0), Ok(CHUNK)]
    );
}

/// Overwrite word 0 of the frame at lane position `pos` (in the lane's
/// first chunk) and read the lane.
fn with_word0(pos: u64, len: u64, state: State) -> Vec<Result<u64, Corruption>> {
    let (h, region) = (header(2, 8), HeapRegion::new(8 * CHUNK));
    // The tail well past the frame: only the frame's own checks can object.
    let lane = padded(&h, &region, None);
    let lanes = Lanes::new(&*h, &region);
    let at = lanes.chunk_at(lanes.chunk_of(lane, 0).unwrap()) + pos as usize;
    let word = frame::encode_word0(pos, len, state);
    lanes.region.word(at).store(word, Ordering::Relaxed);
    read_all(&lanes, lane)
}

#[test]
fn padding_of_the_wrong_length_is_corrupt() {
    assert_eq!(with_word0(136, 120, State::Padding), [Ok(0), Ok(CHUNK)]);
    for len in [112, 128] {
        let got = with_word0(136, len, State::Padding);
        assert_eq!(got, [Ok(0), Err(Corruption::BadLength)], "{len}");
    }
}

#[test]
fn a_frame_length_below_a_header_or_above_a_chunk_is_corrupt() {
    let bad = Err(Corruption::BadLength);
    assert_eq!(with_word0(0, 24, State::Committed), [bad]);
    assert_eq!(with_word0(0, CHUNK + 8, State::Committed), [bad]);
    // A header alone is a record; so is one as long as the chunk (its
    // position word still matches; the tail lies beyond it).
    assert_eq!(with_word0(0, 32, State::Committed)[0], Ok(0));
    assert_eq!(with_word0(0, CHUNK, State::Committed)[0], Ok(0));
}

#[test]
fn a_frame_that_crosses_its_chunks_end_is_corrupt() {
    // The padding's place, 120 bytes to the chunk's end: 120 fit, 128 not.
    let got = with_word0(136, 128, State::Committed);
    assert_eq!(got, [Ok(0), Err(Corruption::CrossesEnd)]);
    let fits = with_word0(136, 120, State::Committed);
    assert_eq!(fits[..1], [Ok(0)]);
    assert_ne!(fits[1], Err(Corruption::CrossesEnd));
}

#[test]
fn a_published_span_longer_than_a_lanes_share_is_corrupt() {
    let (h, region) = (header(2, 8), HeapRegion::new(8 * CHUNK));
    let lanes = Lanes::new(&*h, &region);
    let mut w = lanes.claim(7, 1, 100).unwrap();
    write(&mut w, &lanes, 1, 10).unwrap();
    let span = (lanes.share() + 1) * CHUNK;
    let control = &lanes.control(w.lane()).tail.tail;
    control.store(span + 8, Ordering::Relaxed);
    assert_eq!(read_all(&lanes, w.lane()), [Err(Corruption::BeyondTail)]);
    // SAFETY: the test is the one consumer.
    let mut r = unsafe { lanes.reader(w.lane()) };
    r.skip_to(8);
    assert_eq!(r.skip_to_tail(&lanes), span - 8);
    assert_eq!(r.position(), span);
    // A span of exactly the bound passes this check (the next frame fails).
    control.store(span, Ordering::Relaxed);
    let got = read_all(&lanes, w.lane());
    assert_eq!(got, [Ok(0), Err(Corruption::BadState)]);
}

/// A flusher killed between freeing a lane's drained chunks and storing
/// its head: the next one moves the head past the stretches whose chunks
/// are gone, to the next chunk the lane holds, or to the tail; a head in a
/// chunk still held (killed before freeing anything) stays where it is.
#[test]
fn a_head_left_behind_freed_chunks_moves_to_the_next_held_one() {
    for (freed, expected) in [(0, 136), (1, CHUNK), (2, 488)] {
        let (h, region) = (header(2, 8), HeapRegion::new(8 * CHUNK));
        let lane = padded(&h, &region, None);
        let lanes = Lanes::new(&*h, &region);
        // The head stored after record 1 (mid-chunk), then the chunks freed.
        lanes.control(lane).head.head.store(136, Ordering::Relaxed);
        let chunks = [0, CHUNK].map(|p| lanes.chunk_of(lane, p).unwrap());
        for &c in &chunks[..freed] {
            // SAFETY: the test is the one consumer; nothing writes the lane.
            unsafe { lanes.free_chunk(c) };
        }
        // SAFETY: as above.
        let mut r = unsafe { lanes.reader(lane) };
        r.recover_head(&lanes);
        assert_eq!(r.position(), expected, "chunks freed: {freed}");
        assert_eq!(
            lanes.control(lane).head.head.load(Ordering::Relaxed),
            expected
        );
    }
}

/// A spare slot naming the chunk just past the pool (a clobbered word) is
/// not taken: the writer takes its chunk from the pool and leaves the slot.
#[test]
fn a_spare_slot_past_the_pool_is_not_taken() {
    let (h, region) = (header(1, 8), HeapRegion::new(16 * CHUNK));
    let lanes = Lanes::new(&*h, &region);
    let mut w = lanes.claim(7, 1, 100).unwrap();
    lanes.control(w.lane()).head.spares[0].store(8 + 1, Ordering::Relaxed);
    write(&mut w, &lanes, 1, 200).unwrap();
    assert!(lanes.chunk_of(w.lane(), 0).is_some_and(|c| c < 8));
    assert_eq!(lanes.spares(w.lane()), 1, "the slot is left as it was");
}

/// A chunk table entry naming the chunk just past the pool, whose owner
/// word (the header has room for more chunks than this pool) names the
/// lane: not a chunk of the lane.
#[test]
fn a_table_entry_past_the_pool_is_corrupt() {
    let (h, region) = (header(2, 8), HeapRegion::new(16 * CHUNK));
    let lane = padded(&h, &region, None);
    let lanes = Lanes::new(&*h, &region);
    lanes.control(lane).owner.chunks[0].store(8, Ordering::Relaxed);
    h.pool.owners[8].store(lane as u32 + 1, Ordering::Relaxed);
    assert_eq!(read_all(&lanes, lane), [Err(Corruption::BadChunk)]);
}

/// A claim names its thread in the lane's owner block when the name fits
/// (exactly [`THREAD_NAME_BYTES`] does, one more does not and leaves it
/// empty), the next claim of the recycled lane replaces it, and a hostile
/// length reads as the whole field, never past it.
#[test]
fn a_claim_names_its_thread_when_the_name_fits() {
    let h = header(1, 8);
    let region = HeapRegion::new(8 * CHUNK);
    let lanes = Lanes::new(&*h, &region);
    let (fits, long) = ([b'a'; THREAD_NAME_BYTES], [b'b'; THREAD_NAME_BYTES + 1]);
    assert!(holds_thread_name(&fits) && !holds_thread_name(&long));
    let mut names = Vec::new();
    for (claim, name) in [(1, &fits[..]), (2, &long[..]), (3, b"worker-3")] {
        let w = lanes
            .claim_named(7, claim, 40 + claim as u64, name)
            .unwrap();
        let t = lanes.thread(w.lane());
        names.push((t.id, t.name().to_vec()));
        w.release(&lanes);
        recycle(&lanes, w.lane());
    }
    let expected = [
        (41, fits.to_vec()),
        (42, Vec::new()),
        (43, b"worker-3".to_vec()),
    ];
    assert_eq!(names, expected);
    let owner = &h.lanes[0].owner;
    owner.thread_name_len.store(u64::MAX, Ordering::Relaxed);
    let whole = [&b"worker-3"[..], &[0; THREAD_NAME_BYTES - 8]].concat();
    assert_eq!(lanes.thread(0).name(), whole);
}
