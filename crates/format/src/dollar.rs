//! `$`-style format strings (`logging.Formatter(style='$')`):
//! `string.Template` with the record's attributes, e.g.
//! `$asctime ${levelname}: $message`. A field is `$name` or `${name}`
//! (ASCII identifiers, as `Template.idpattern`) and is `str()` of the
//! value; `$$` is a literal `$`; any other `$` is an error, as CPython's
//! validation says ("bare '$' not allowed").

use crate::line::{Conv, Piece};

fn is_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_ident(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// Split a `$`-style format into literal text and fields; Err is why not.
pub(crate) fn parse(format: &str) -> Result<Vec<Piece>, String> {
    let bytes = format.as_bytes();
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let Some(at) = format[i..].find('$') else {
            lit.push_str(&format[i..]);
            break;
        };
        lit.push_str(&format[i..i + at]);
        i += at;
        let (name, next, shown) = match bytes.get(i + 1) {
            Some(b'$') => {
                lit.push('$');
                i += 2;
                continue;
            }
            Some(&b) if is_start(b) => {
                let mut j = i + 1;
                while bytes.get(j).copied().is_some_and(is_ident) {
                    j += 1;
                }
                (&format[i + 1..j], j, &format[i..j])
            }
            Some(b'{') => {
                let mut j = i + 2;
                if !bytes.get(j).copied().is_some_and(is_start) {
                    return Err(bare(i));
                }
                while bytes.get(j).copied().is_some_and(is_ident) {
                    j += 1;
                }
                if bytes.get(j) != Some(&b'}') {
                    return Err(bare(i));
                }
                (&format[i + 2..j], j + 1, &format[i..j + 1])
            }
            _ => return Err(bare(i)),
        };
        if !lit.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut lit)));
        }
        pieces.push(Piece::Field {
            name: name.to_string(),
            conv: Conv::Plain,
            shown: shown.to_string(),
        });
        i = next;
    }
    if !lit.is_empty() {
        pieces.push(Piece::Literal(lit));
    }
    Ok(pieces)
}

fn bare(at: usize) -> String {
    format!("bare '$' at byte {at}: write '$name', '${{name}}' or '$$'")
}
