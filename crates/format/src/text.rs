//! Bytes to text for log lines: invalid UTF-8 becomes U+FFFD, and with
//! escaping on, control characters become visible escapes so that one record
//! is always one line and cannot forge another.

use std::borrow::Cow;

/// Append `bytes` as UTF-8 (invalid sequences replaced by U+FFFD).
#[inline]
pub fn push_lossy(bytes: &[u8], escape: bool, out: &mut Vec<u8>) {
    if is_plain(bytes, b'\\') {
        out.extend_from_slice(bytes);
        return;
    }
    let text = lossy(bytes);
    if escape {
        push_escaped(&text, out);
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// Whether `bytes` is printable ASCII (0x20..=0x7e) without `\\` and
/// without `also`: the common case, which every format writes as it is. Run
/// on every field of every record, so 16 bytes at a time: one signed
/// compare finds both control characters and non-ASCII bytes (which are
/// negative as `i8`), two more find the special characters.
#[inline]
pub fn is_plain(bytes: &[u8], also: u8) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_plain_sse2(bytes, also)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        bytes
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'\\' && b != also)
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn is_plain_sse2(bytes: &[u8], also: u8) -> bool {
    let n = bytes.len();
    if n < 16 {
        // Pad a copy with a plain byte: one vector test for short fields.
        let mut block = [b'a'; 16];
        block[..n].copy_from_slice(bytes);
        return plain_block(&block, also);
    }
    let p = bytes.as_ptr();
    let mut at = 0;
    while at + 16 <= n {
        // SAFETY: at + 16 <= n: the 16 bytes are inside `bytes`.
        if !plain_block(unsafe { &*p.add(at).cast::<[u8; 16]>() }, also) {
            return false;
        }
        at += 16;
    }
    // The last, overlapping, 16 bytes (n >= 16).
    // SAFETY: n - 16 + 16 = n: inside `bytes`.
    at == n || plain_block(unsafe { &*p.add(n - 16).cast::<[u8; 16]>() }, also)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn plain_block(block: &[u8; 16], also: u8) -> bool {
    use core::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86_64; the load is unaligned and reads exactly
    // the 16 bytes of `block`.
    unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        let bad = _mm_or_si128(
            _mm_or_si128(
                _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)),
            ),
            _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(also as i8)),
            ),
        );
        _mm_movemask_epi8(bad) == 0
    }
}

/// Lossy text of `bytes` (borrowed when valid UTF-8). Log text is mostly
/// ASCII, which `is_ascii` checks a word at a time; the lossy iterator only
/// runs for invalid input.
#[inline]
pub fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        return Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// `\` -> `\\`, newline/CR/tab -> `\n` `\r` `\t`, other C0, DEL and C1
/// controls -> `\xNN` / `\u{NN}`.
pub fn push_escaped(text: &str, out: &mut Vec<u8>) {
    if !text
        .bytes()
        .any(|b| b < 0x20 || b == 0x7f || b == b'\\' || b >= 0xc2)
    {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.extend_from_slice(format!("\\x{:02x}", c as u32).as_bytes())
            }
            c if (0x80..0xa0).contains(&(c as u32)) || c == '\u{2028}' || c == '\u{2029}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &[u8]) -> String {
        let mut out = Vec::new();
        push_lossy(s, true, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_means_printable_ascii_without_specials_at_every_position() {
        for n in 0..=40 {
            let base = vec![b'x'; n];
            assert!(is_plain(&base, b'"'), "{n} plain bytes");
            for at in 0..n {
                for bad in [0u8, b'\n', 0x1f, 0x7f, 0x80, 0xff, b'\\', b'"'] {
                    let mut t = base.clone();
                    t[at] = bad;
                    assert!(!is_plain(&t, b'"'), "byte {bad:#x} at {at} of {n}");
                }
                let mut t = base.clone();
                t[at] = b'~';
                assert!(is_plain(&t, b'"'));
            }
        }
    }

    #[test]
    fn escaping_keeps_a_record_on_one_line() {
        assert_eq!(esc(b"a\nb\r\tc\\"), "a\\nb\\r\\tc\\\\");
        assert_eq!(esc(b"\x1b[31mred\0"), "\\x1b[31mred\\x00");
        assert_eq!(esc("caf\u{e9} \u{2028}".as_bytes()), "caf\u{e9} \\u2028");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let mut out = Vec::new();
        push_lossy(b"ok \xff\xfe end", false, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "ok \u{fffd}\u{fffd} end");
    }
}
