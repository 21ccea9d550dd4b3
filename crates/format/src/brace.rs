//! `{`-style format strings (`logging.Formatter(style='{')`): `str.format`
//! with the record's attributes as keyword arguments, e.g.
//! `{asctime} {levelname:<8} {name}: {message!r}`.
//!
//! A field is `{name[!conversion][:spec]}` with conversions `s r a` and
//! the format-spec mini-language (see [`crate::pyfmt`]); `{{` and `}}` are
//! literal braces. Positional fields (`{}`, `{0}`), attribute and index
//! access (`{name.upper}`, `{ctx[user]}`) and fields nested in a spec
//! (`{message:{width}}`) are refused when compiling.

use crate::line::{Conv, Piece};
use crate::pyfmt::{BraceSpec, Conversion};

/// Split a `{`-style format into literal text and fields; Err is why not.
pub(crate) fn parse(format: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = format.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                chars.next();
                lit.push('}');
            }
            '}' => {
                return Err(format!(
                    "single '}}' at byte {i} (write '}}}}' for a brace)"
                ))
            }
            '{' => {
                // The field runs to the matching '}'.
                let mut depth = 1;
                let mut end = None;
                for (j, c) in chars.by_ref() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or_else(|| {
                    format!("'{{' at byte {i} has no '}}' (write '{{{{' for a brace)")
                })?;
                let field = &format[i + 1..end];
                if !lit.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                }
                pieces.push(parse_field(field)?);
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Literal(lit));
    }
    Ok(pieces)
}

fn parse_field(field: &str) -> Result<Piece, String> {
    let shown = format!("{{{field}}}");
    let name_end = field.find([':', '!']).unwrap_or(field.len());
    let name = &field[..name_end];
    if name.is_empty() || name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "positional field {shown}: logging passes the record's attributes by name"
        ));
    }
    if name.contains(['.', '[']) {
        return Err(format!(
            "{shown}: attribute and index access in a field is not supported"
        ));
    }
    if !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(format!("invalid field name {name:?} in {shown}"));
    }
    let mut rest = &field[name_end..];
    let mut conversion = None;
    if let Some(r) = rest.strip_prefix('!') {
        let mut cs = r.chars();
        let c = cs
            .next()
            .ok_or_else(|| format!("{shown}: '!' needs a conversion (s, r or a)"))?;
        conversion = Some(
            Conversion::parse(c)
                .ok_or_else(|| format!("{shown}: invalid conversion {c:?} (s, r or a)"))?,
        );
        rest = cs.as_str();
        if !rest.is_empty() && !rest.starts_with(':') {
            return Err(format!("{shown}: expected ':' after the conversion"));
        }
    }
    let spec_text = rest.strip_prefix(':').unwrap_or(rest);
    if spec_text.contains(['{', '}']) {
        return Err(format!(
            "{shown}: fields nested in a format spec are not supported"
        ));
    }
    let spec = BraceSpec::parse(spec_text).map_err(|e| format!("{shown}: {e}"))?;
    let conv = match conversion {
        None | Some(Conversion::Str) if spec.empty => Conv::Plain,
        _ => Conv::Brace { conversion, spec },
    };
    Ok(Piece::Field {
        name: name.to_string(),
        conv,
        shown,
    })
}
