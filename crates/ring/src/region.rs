//! The memory a ring lives in.
//!
//! [`Region`] separates the protocol (`ring.rs`) from where its bytes are: a
//! shared mapping across processes ([`RawRegion`]) or a heap buffer for tests
//! and loom models ([`HeapRegion`]). Header words are accessed as atomics at
//! 8-aligned offsets; payload bytes are plain memory whose ownership the
//! protocol hands over with Release/Acquire on word 0 of each record.

use crate::sync::{AtomicU64, Ordering};

/// Byte storage of a ring of `capacity()` bytes.
///
/// # Safety
/// Implementors guarantee that `word(off)` for every 8-aligned `off <
/// capacity()` refers to the same 8 bytes on every call, and that `fill`,
/// `view` and `zero` touch exactly the bytes they are given.
pub unsafe trait Region {
    /// Bytes in the ring: a power of two, the same on every call.
    fn capacity(&self) -> u64;

    /// The atomic word at byte `offset` (8-aligned, `offset + 8 <= capacity`).
    /// Safe to call with any offset: an implementation wraps or panics on one
    /// out of range, never reads outside the ring.
    fn word(&self, offset: usize) -> &AtomicU64;

    /// Store `words` into the consecutive words from byte `offset` (as
    /// [`Region::word`]'s), each with `order`. An implementation may check
    /// the range once rather than for each word.
    #[inline]
    fn store_words<const N: usize>(&self, offset: usize, words: [u64; N], order: Ordering) {
        for (i, w) in words.into_iter().enumerate() {
            self.word(offset + 8 * i).store(w, order);
        }
    }

    /// [`Region::store_words`] for a range the caller has checked, without
    /// the implementation's own range check (the log call's path).
    ///
    /// # Safety
    /// `offset` is 8-aligned and `offset + 8 * N <= capacity()`.
    #[inline]
    unsafe fn store_words_in_range<const N: usize>(
        &self,
        offset: usize,
        words: [u64; N],
        order: Ordering,
    ) {
        self.store_words(offset, words, order)
    }

    /// Let `f` write `len` bytes at `offset` in place.
    ///
    /// # Safety
    /// The caller owns `[offset, offset + len)` exclusively (a claimed,
    /// uncommitted record) and the range lies inside the ring.
    unsafe fn fill(&self, offset: usize, len: usize, f: impl FnOnce(&mut [u8]));

    /// Let `f` read `len` bytes at `offset`.
    ///
    /// # Safety
    /// The bytes were published to the caller (Acquire of a committed header)
    /// and nobody writes them until the caller releases them; the range lies
    /// inside the ring.
    unsafe fn view<T>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> T) -> T;

    /// Hint that bytes at `offset` will be written soon (a prefetch for
    /// ownership). Never faults, whatever the offset.
    #[inline]
    fn prefetch_write(&self, _offset: usize) {}

    /// Hint that bytes at `offset` will be read soon. Never faults.
    #[inline]
    fn prefetch_read(&self, _offset: usize) {}

    /// Zero `len` bytes at `offset` (8-aligned start and length).
    ///
    /// # Safety
    /// The caller (the single consumer) owns the range: consumed, and head not
    /// yet advanced past it.
    unsafe fn zero(&self, offset: usize, len: usize);
}

/// A ring in memory the caller maps, e.g. the data part of a shared segment.
#[derive(Debug)]
pub struct RawRegion {
    base: *mut u8,
    capacity: u64,
}

// SAFETY: the region is shared memory designed for concurrent access; all
// concurrent access goes through atomics or ranges handed over by the protocol.
unsafe impl Send for RawRegion {}
// SAFETY: as above.
unsafe impl Sync for RawRegion {}

impl RawRegion {
    /// A region over the `capacity` bytes at `base`. It does not own them:
    /// the caller keeps the memory mapped (see [`crate::MappedRegion`] for a
    /// region that does).
    ///
    /// # Safety
    /// `base` is 8-aligned and valid for reads and writes of `capacity` bytes
    /// for as long as the region is used; `capacity` is a power of two of at
    /// least 64 bytes.
    pub unsafe fn new(base: *mut u8, capacity: u64) -> Self {
        debug_assert!(capacity.is_power_of_two() && capacity >= 64);
        Self { base, capacity }
    }
}

// SAFETY: every accessor offsets `base` by exactly the given offset.
unsafe impl Region for RawRegion {
    #[inline]
    fn capacity(&self) -> u64 {
        self.capacity
    }

    #[inline]
    fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset % 8 == 0 && offset as u64 + 8 <= self.capacity);
        // A safe function must not reach outside the mapping whatever it is
        // given: the mask (one AND; the ring's offsets are already in range)
        // keeps the offset 8-aligned and below the capacity, a power of two.
        let offset = offset & (self.capacity as usize - 8);
        // SAFETY: `base` is 8-aligned and valid for `capacity` bytes (new's
        // contract), the masked offset is 8-aligned and at most capacity - 8,
        // and AtomicU64 has u64's layout.
        unsafe { &*(self.base.add(offset) as *const AtomicU64) }
    }

    #[inline]
    fn store_words<const N: usize>(&self, offset: usize, words: [u64; N], order: Ordering) {
        let span = 8 * N;
        debug_assert!(offset % 8 == 0 && (offset + span) as u64 <= self.capacity);
        // As in `word`, once for the whole range: 8-aligned, and clamped so
        // that all N words lie inside the mapping.
        let offset = (offset & (self.capacity as usize - 8)).min(self.capacity as usize - span);
        // SAFETY: `base` is 8-aligned and valid for `capacity` bytes, and
        // offset + 8 * N <= capacity (the clamp; N words fit in a ring of at
        // least 64 bytes for the N used); AtomicU64 has u64's layout.
        let first = unsafe { self.base.add(offset) as *const AtomicU64 };
        for (i, w) in words.into_iter().enumerate() {
            // SAFETY: word i of the checked range.
            unsafe { &*first.add(i) }.store(w, order);
        }
    }

    #[inline]
    unsafe fn store_words_in_range<const N: usize>(
        &self,
        offset: usize,
        words: [u64; N],
        order: Ordering,
    ) {
        debug_assert!(offset % 8 == 0 && (offset + 8 * N) as u64 <= self.capacity);
        // SAFETY: `base` is 8-aligned and valid for `capacity` bytes (new's
        // contract), the range lies inside it (this function's contract), and
        // AtomicU64 has u64's layout.
        let first = unsafe { self.base.add(offset) as *const AtomicU64 };
        for (i, w) in words.into_iter().enumerate() {
            // SAFETY: word i of the range.
            unsafe { &*first.add(i) }.store(w, order);
        }
    }

    #[inline]
    unsafe fn fill(&self, offset: usize, len: usize, f: impl FnOnce(&mut [u8])) {
        // SAFETY: in bounds and exclusively owned by the caller (fill's contract).
        f(unsafe { std::slice::from_raw_parts_mut(self.base.add(offset), len) })
    }

    #[inline]
    unsafe fn view<T>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> T) -> T {
        // SAFETY: in bounds, published and not written until released (view's contract).
        f(unsafe { std::slice::from_raw_parts(self.base.add(offset), len) })
    }

    #[inline]
    fn prefetch_write(&self, offset: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let offset = offset & (self.capacity as usize - 1);
            // SAFETY: prefetch never faults; the address is inside the mapping anyway.
            unsafe {
                use core::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
                _mm_prefetch::<_MM_HINT_ET0>(self.base.add(offset) as *const i8)
            }
        }
    }

    #[inline]
    fn prefetch_read(&self, offset: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let offset = offset & (self.capacity as usize - 1);
            // SAFETY: prefetch never faults; the address is inside the mapping anyway.
            unsafe {
                use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(self.base.add(offset) as *const i8)
            }
        }
    }

    #[inline]
    unsafe fn zero(&self, offset: usize, len: usize) {
        // SAFETY: in bounds and owned by the consumer (zero's contract).
        unsafe { std::ptr::write_bytes(self.base.add(offset), 0, len) }
    }
}

/// A ring on the heap for tests. Under loom, header words are loom atomics and
/// payload bytes live in loom `UnsafeCell`s, so loom checks that every payload
/// read happens-after the write it observes.
pub struct HeapRegion {
    words: Vec<AtomicU64>,
    #[cfg(loom)]
    cells: Vec<loom::cell::UnsafeCell<u64>>,
}

impl std::fmt::Debug for HeapRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeapRegion")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl HeapRegion {
    /// A zeroed ring of `capacity` bytes.
    ///
    /// # Panics
    /// If `capacity` is not a power of two of at least 64 bytes.
    pub fn new(capacity: u64) -> Self {
        assert!(capacity.is_power_of_two() && capacity >= 64);
        let n = (capacity / 8) as usize;
        Self {
            words: (0..n).map(|_| AtomicU64::new(0)).collect(),
            #[cfg(loom)]
            cells: (0..n).map(|_| loom::cell::UnsafeCell::new(0)).collect(),
        }
    }
}

#[cfg(not(loom))]
impl HeapRegion {
    fn base(&self) -> *mut u8 {
        self.words.as_ptr() as *mut u8
    }
}

// SAFETY: words are indexed by offset / 8; outside loom the bytes are the
// words' own memory, exactly like a RawRegion over the Vec.
unsafe impl Region for HeapRegion {
    fn capacity(&self) -> u64 {
        self.words.len() as u64 * 8
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        &self.words[offset / 8]
    }

    #[cfg(not(loom))]
    unsafe fn fill(&self, offset: usize, len: usize, f: impl FnOnce(&mut [u8])) {
        assert!(offset + len <= self.words.len() * 8);
        // SAFETY: bounds checked above; exclusive ownership is fill's contract.
        f(unsafe { std::slice::from_raw_parts_mut(self.base().add(offset), len) })
    }

    #[cfg(not(loom))]
    unsafe fn view<T>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> T) -> T {
        assert!(offset + len <= self.words.len() * 8);
        // SAFETY: bounds checked above; publication is view's contract.
        f(unsafe { std::slice::from_raw_parts(self.base().add(offset), len) })
    }

    #[cfg(not(loom))]
    unsafe fn zero(&self, offset: usize, len: usize) {
        for w in &self.words[offset / 8..(offset + len) / 8] {
            w.store(0, Ordering::Relaxed);
        }
    }

    #[cfg(loom)]
    unsafe fn fill(&self, offset: usize, len: usize, f: impl FnOnce(&mut [u8])) {
        assert!(offset % 8 == 0);
        let mut buf = vec![0u8; len.div_ceil(8) * 8];
        f(&mut buf[..len]);
        for (i, chunk) in buf.chunks(8).enumerate() {
            let v = u64::from_ne_bytes(chunk.try_into().unwrap());
            // SAFETY: loom tracks this write; exclusivity is fill's contract.
            self.cells[offset / 8 + i].with_mut(|p| unsafe { *p = v });
        }
    }

    #[cfg(loom)]
    unsafe fn view<T>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> T) -> T {
        assert!(offset % 8 == 0);
        let mut buf = Vec::with_capacity(len.div_ceil(8) * 8);
        for i in 0..len.div_ceil(8) {
            // SAFETY: loom checks this read happens-after the last write.
            let v = self.cells[offset / 8 + i].with(|p| unsafe { *p });
            buf.extend_from_slice(&v.to_ne_bytes());
        }
        f(&buf[..len])
    }

    #[cfg(loom)]
    unsafe fn zero(&self, offset: usize, len: usize) {
        for i in offset / 8..(offset + len) / 8 {
            self.words[i].store(0, Ordering::Relaxed);
            // SAFETY: loom tracks this write; ownership is zero's contract.
            self.cells[i].with_mut(|p| unsafe { *p = 0 });
        }
    }
}

// SAFETY: forwards every call to the referenced region, which upholds the contract.
unsafe impl<T: Region> Region for &T {
    fn capacity(&self) -> u64 {
        (**self).capacity()
    }
    fn word(&self, offset: usize) -> &AtomicU64 {
        (**self).word(offset)
    }
    fn store_words<const N: usize>(&self, offset: usize, words: [u64; N], order: Ordering) {
        (**self).store_words(offset, words, order)
    }
    unsafe fn store_words_in_range<const N: usize>(
        &self,
        offset: usize,
        words: [u64; N],
        order: Ordering,
    ) {
        // SAFETY: the caller upholds the contract for us.
        unsafe { (**self).store_words_in_range(offset, words, order) }
    }
    unsafe fn fill(&self, offset: usize, len: usize, f: impl FnOnce(&mut [u8])) {
        // SAFETY: the caller upholds fill's contract for us.
        unsafe { (**self).fill(offset, len, f) }
    }
    unsafe fn view<U>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> U) -> U {
        // SAFETY: the caller upholds view's contract for us.
        unsafe { (**self).view(offset, len, f) }
    }
    unsafe fn zero(&self, offset: usize, len: usize) {
        // SAFETY: the caller upholds zero's contract for us.
        unsafe { (**self).zero(offset, len) }
    }
}
