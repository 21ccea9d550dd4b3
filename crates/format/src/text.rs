//! Bytes to text for log lines: invalid UTF-8 becomes U+FFFD, and with
//! escaping on, control characters become visible escapes so that one record
//! is always one line and cannot forge another.

use std::borrow::Cow;

/// Append `bytes` as UTF-8 (invalid sequences replaced by U+FFFD).
#[inline]
pub fn push_lossy(bytes: &[u8], escape: bool, out: &mut Vec<u8>) {
    let text = lossy(bytes);
    if escape {
        push_escaped(&text, out);
    } else {
        out.extend_from_slice(text.as_bytes());
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
