//! Python's number and string formatting for both field syntaxes: the `%`
//! operator's conversions (`%-08.3f`, `%#x`, `%5.2s`...) and `format()`'s
//! format-spec mini-language (`{lineno:>5}`, `{created:,.3f}`,
//! `{n:#010_x}`...), over the value types log record attributes have.
//!
//! A value a conversion cannot take (CPython raises TypeError or
//! ValueError) is an `Err` with CPython's message; the caller decides.

use std::fmt::Write;

use crate::value::{float_repr, py_ascii, py_repr, py_str, Val};

/// What CPython would raise, as its message.
pub(crate) type Mismatch = String;

/// A `%` conversion: `%(name)[flags][width][.precision]conversion`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PercentSpec {
    pub left: bool,
    pub zero: bool,
    pub plus: bool,
    pub space: bool,
    pub alt: bool,
    pub width: usize,
    pub precision: Option<usize>,
    pub conv: u8,
}

impl PercentSpec {
    /// A plain `%s` (no flags, width or precision): `str()` as it is.
    pub(crate) fn is_plain_s(&self) -> bool {
        *self
            == PercentSpec {
                conv: b's',
                ..PercentSpec::default()
            }
    }
}

/// A `format()` spec: `[[fill]align][sign][#][0][width][grouping][.precision][type]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BraceSpec {
    /// The fill character, when one was given.
    pub fill: Option<char>,
    pub align: Option<u8>,
    pub sign: Option<u8>,
    pub alt: bool,
    pub zero: bool,
    pub width: usize,
    pub grouping: Option<u8>,
    pub precision: Option<usize>,
    /// 0: no type.
    pub ty: u8,
    /// The spec text was empty: `format(v, '')` is `str(v)` for every type.
    pub empty: bool,
}

/// Widths and precisions beyond this are refused (a typo, not a format).
pub(crate) const MAX_WIDTH: usize = 1 << 16;

impl BraceSpec {
    /// Parse a spec as `str.format` does; Err is CPython's ValueError text.
    pub(crate) fn parse(spec: &str) -> Result<Self, String> {
        let mut s = BraceSpec {
            fill: None,
            align: None,
            sign: None,
            alt: false,
            zero: false,
            width: 0,
            grouping: None,
            precision: None,
            ty: 0,
            empty: spec.is_empty(),
        };
        let chars: Vec<char> = spec.chars().collect();
        let mut i = 0;
        let is_align = |c: char| matches!(c, '<' | '>' | '=' | '^');
        if chars.len() >= 2 && is_align(chars[1]) {
            s.fill = Some(chars[0]);
            s.align = Some(chars[1] as u8);
            i = 2;
        } else if !chars.is_empty() && is_align(chars[0]) {
            s.align = Some(chars[0] as u8);
            i = 1;
        }
        if let Some(&c @ ('+' | '-' | ' ')) = chars.get(i) {
            s.sign = Some(c as u8);
            i += 1;
        }
        if chars.get(i) == Some(&'z') {
            return Err("the 'z' option is not supported by logging's validation".into());
        }
        if chars.get(i) == Some(&'#') {
            s.alt = true;
            i += 1;
        }
        if s.fill.is_none() && chars.get(i) == Some(&'0') {
            s.zero = true;
            i += 1;
        }
        let digits = |i: &mut usize| -> Result<Option<usize>, String> {
            let start = *i;
            while chars.get(*i).is_some_and(|c| c.is_ascii_digit()) {
                *i += 1;
            }
            if *i == start {
                return Ok(None);
            }
            let n: String = chars[start..*i].iter().collect();
            match n.parse::<usize>() {
                Ok(n) if n <= MAX_WIDTH => Ok(Some(n)),
                _ => Err(format!("width or precision {n} is too large")),
            }
        };
        s.width = digits(&mut i)?.unwrap_or(0);
        if let Some(&c @ (',' | '_')) = chars.get(i) {
            s.grouping = Some(c as u8);
            i += 1;
            if matches!(chars.get(i), Some(',' | '_')) {
                return Err("Cannot specify both ',' and '_'.".into());
            }
        }
        if chars.get(i) == Some(&'.') {
            i += 1;
            s.precision = Some(digits(&mut i)?.ok_or("Format specifier missing precision")?);
        }
        match chars.len() - i {
            0 => {}
            1 => {
                let c = chars[i];
                if !"bcdeEfFgGnosxX%".contains(c) {
                    return Err(format!("bad specifier: unknown format code '{c}'"));
                }
                s.ty = c as u8;
            }
            _ => return Err("Invalid format specifier".into()),
        }
        Ok(s)
    }

    fn fill(&self) -> char {
        match self.fill {
            Some(c) => c,
            None if self.zero => '0',
            None => ' ',
        }
    }
}

/// `%`-operator formatting of `v` by `spec`, appended to `out`.
pub(crate) fn percent(v: &Val<'_>, spec: &PercentSpec, out: &mut String) -> Result<(), Mismatch> {
    let n = match spec.conv {
        b's' | b'r' | b'a' | b'c' => return percent_text(v, spec, out),
        b'd' | b'i' | b'u' | b'x' | b'X' | b'o' => percent_integer(v, spec)?,
        b'e' | b'E' | b'f' | b'F' | b'g' | b'G' => percent_float(v, spec)?,
        other => return Err(format!("unsupported format character '{}'", other as char)),
    };
    finish_percent(n, spec, out)
}

/// `%s`, `%r`, `%a` and `%c`: text, padded.
fn percent_text(v: &Val<'_>, spec: &PercentSpec, out: &mut String) -> Result<(), Mismatch> {
    let conv = spec.conv;
    match conv {
        b's' | b'r' | b'a' => {
            let mut text = String::new();
            match conv {
                b's' => py_str(v, &mut text),
                b'r' => py_repr(v, &mut text),
                _ => py_ascii(v, &mut text),
            }
            pad_text(&text, spec.precision, spec.width, b'>', spec.left, ' ', out);
            Ok(())
        }
        _ => {
            // %c
            let c = match v {
                Val::Int(i) => char_of(*i)?,
                Val::Bool(b) => char_of(*b as i128)?,
                Val::Str(s) if s.chars().count() == 1 => s.chars().next().unwrap_or(' '),
                Val::Str(s) => {
                    return Err(format!(
                        "%c requires an int or a unicode character, not a string of length {}",
                        s.chars().count()
                    ))
                }
                _ => {
                    return Err(format!(
                        "%c requires an int or a unicode character, not {}",
                        v.type_name()
                    ))
                }
            };
            pad_text(
                c.encode_utf8(&mut [0; 4]),
                None,
                spec.width,
                b'>',
                spec.left,
                ' ',
                out,
            );
            Ok(())
        }
    }
}

/// `%d %i %u %x %X %o`: the number's digits, sign and prefix.
fn percent_integer(v: &Val<'_>, spec: &PercentSpec) -> Result<Number, Mismatch> {
    let conv = spec.conv;
    let mut n = Number::default();
    let i = match v {
        Val::Int(i) => *i,
        Val::Bool(b) => *b as i128,
        Val::Float(f) if matches!(conv, b'd' | b'i' | b'u') => {
            if !f.is_finite() {
                return Err("cannot convert float to integer".into());
            }
            if f.abs() >= 1e38 {
                n.negative = f.is_sign_negative() && *f != 0.0;
                n.int = format!("{:.0}", f.abs().trunc());
                return Ok(n);
            }
            f.trunc() as i128
        }
        _ => {
            let what = if matches!(conv, b'x' | b'X' | b'o') {
                "an integer is required"
            } else {
                "a real number is required"
            };
            return Err(format!(
                "%{} format: {what}, not {}",
                conv as char,
                v.type_name()
            ));
        }
    };
    n.negative = i < 0;
    let a = i.unsigned_abs();
    n.int = match conv {
        b'x' => format!("{a:x}"),
        b'X' => format!("{a:X}"),
        b'o' => format!("{a:o}"),
        _ => a.to_string(),
    };
    if let Some(p) = spec.precision {
        if n.int.len() < p {
            n.int.insert_str(0, &"0".repeat(p - n.int.len()));
        }
    }
    if spec.alt {
        n.prefix = match conv {
            b'x' => "0x",
            b'X' => "0X",
            b'o' => "0o",
            _ => "",
        };
    }
    Ok(n)
}

/// `%e %E %f %F %g %G`.
fn percent_float(v: &Val<'_>, spec: &PercentSpec) -> Result<Number, Mismatch> {
    let conv = spec.conv;
    let f = as_float(v).ok_or_else(|| {
        format!(
            "%{} format: a real number is required, not {}",
            conv as char,
            v.type_name()
        )
    })?;
    let body = float_body(
        f.abs(),
        conv,
        Some(spec.precision.unwrap_or(6)),
        spec.alt,
        false,
    );
    Ok(Number::float(f.is_sign_negative() && !f.is_nan(), body))
}

fn finish_percent(mut n: Number, spec: &PercentSpec, out: &mut String) -> Result<(), Mismatch> {
    n.sign = if n.negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    let (fill, align) = if spec.left {
        (' ', b'<')
    } else if spec.zero {
        ('0', b'=')
    } else {
        (' ', b'>')
    };
    n.layout(fill, align, spec.width, None, out);
    Ok(())
}

fn char_of(i: i128) -> Result<char, Mismatch> {
    u32::try_from(i)
        .ok()
        .and_then(char::from_u32)
        .ok_or_else(|| "%c arg not in range(0x110000)".into())
}

fn as_float(v: &Val<'_>) -> Option<f64> {
    match v {
        Val::Float(f) => Some(*f),
        Val::Int(i) => Some(*i as f64),
        Val::Bool(b) => Some(*b as u8 as f64),
        _ => None,
    }
}

/// `format(v, spec)`, after an optional `!s`/`!r`/`!a` conversion.
pub(crate) fn brace(
    v: &Val<'_>,
    conversion: Option<u8>,
    spec: &BraceSpec,
    out: &mut String,
) -> Result<(), Mismatch> {
    if let Some(c) = conversion {
        let mut text = String::new();
        match c {
            b's' => py_str(v, &mut text),
            b'r' => py_repr(v, &mut text),
            _ => py_ascii(v, &mut text),
        }
        return brace_str(&text, spec, out);
    }
    if spec.empty {
        py_str(v, out);
        return Ok(());
    }
    match v {
        Val::Str(s) => brace_str(s, spec, out),
        Val::Int(i) => brace_int(*i, "int", spec, out),
        Val::Bool(b) => brace_int(*b as i128, "bool", spec, out),
        Val::Float(f) => brace_float(*f, spec, out),
        other => Err(format!(
            "unsupported format string passed to {}.__format__",
            other.type_name()
        )),
    }
}

fn brace_str(s: &str, spec: &BraceSpec, out: &mut String) -> Result<(), Mismatch> {
    if !matches!(spec.ty, 0 | b's') {
        return Err(format!(
            "Unknown format code '{}' for object of type 'str'",
            spec.ty as char
        ));
    }
    if spec.sign.is_some() {
        return Err("Sign not allowed in string format specifier".into());
    }
    if spec.alt {
        return Err("Alternate form (#) not allowed in string format specifier".into());
    }
    if let Some(g) = spec.grouping {
        return Err(format!("Cannot specify '{}' with 's'.", g as char));
    }
    if spec.align == Some(b'=') {
        return Err("'=' alignment not allowed in string format specifier".into());
    }
    let align = spec.align.unwrap_or(b'<');
    pad_text(
        s,
        spec.precision,
        spec.width,
        align,
        false,
        spec.fill(),
        out,
    );
    Ok(())
}

fn brace_int(i: i128, type_name: &str, spec: &BraceSpec, out: &mut String) -> Result<(), Mismatch> {
    let ty = spec.ty;
    if matches!(ty, b'e' | b'E' | b'f' | b'F' | b'g' | b'G' | b'%') {
        return brace_float(i as f64, spec, out);
    }
    if !matches!(ty, 0 | b'd' | b'n' | b'b' | b'o' | b'x' | b'X' | b'c') {
        return Err(format!(
            "Unknown format code '{}' for object of type '{type_name}'",
            ty as char
        ));
    }
    if spec.precision.is_some() {
        return Err("Precision not allowed in integer format specifier".into());
    }
    if let Some(g) = spec.grouping {
        let bad = match g {
            b',' => matches!(ty, b'n' | b'b' | b'o' | b'x' | b'X' | b'c'),
            _ => matches!(ty, b'n' | b'c'),
        };
        if bad {
            return Err(format!(
                "Cannot specify '{}' with '{}'.",
                g as char, ty as char
            ));
        }
    }
    let mut n = Number::default();
    if ty == b'c' {
        if spec.sign.is_some() {
            return Err("Sign not allowed with integer format specifier 'c'".into());
        }
        if spec.alt {
            return Err("Alternate form (#) not allowed with integer format specifier 'c'".into());
        }
        let c = u32::try_from(i)
            .ok()
            .and_then(char::from_u32)
            .ok_or("%c arg not in range(0x110000)")?;
        n.rest.push(c);
    } else {
        n.negative = i < 0;
        let a = i.unsigned_abs();
        n.int = match ty {
            b'b' => format!("{a:b}"),
            b'o' => format!("{a:o}"),
            b'x' => format!("{a:x}"),
            b'X' => format!("{a:X}"),
            _ => a.to_string(),
        };
        if spec.alt {
            n.prefix = match ty {
                b'b' => "0b",
                b'o' => "0o",
                b'x' => "0x",
                b'X' => "0X",
                _ => "",
            };
        }
    }
    finish_brace(
        n,
        spec,
        if matches!(ty, b'b' | b'o' | b'x' | b'X') {
            4
        } else {
            3
        },
        out,
    );
    Ok(())
}

fn brace_float(f: f64, spec: &BraceSpec, out: &mut String) -> Result<(), Mismatch> {
    let ty = spec.ty;
    if !matches!(
        ty,
        0 | b'e' | b'E' | b'f' | b'F' | b'g' | b'G' | b'n' | b'%'
    ) {
        return Err(format!(
            "Unknown format code '{}' for object of type 'float'",
            ty as char
        ));
    }
    if ty == b'n' && spec.grouping.is_some() {
        return Err(format!(
            "Cannot specify '{}' with 'n'.",
            spec.grouping.unwrap_or(b',') as char
        ));
    }
    let (ty, precision) = match ty {
        b'n' => (b'g', Some(spec.precision.unwrap_or(6))),
        0 => (0, spec.precision),
        b'%' | b'e' | b'E' | b'f' | b'F' | b'g' | b'G' => (ty, Some(spec.precision.unwrap_or(6))),
        _ => unreachable!("checked above"),
    };
    let body = float_body(f.abs(), ty, precision, spec.alt, true);
    let n = Number::float(f.is_sign_negative() && !f.is_nan(), body);
    finish_brace(n, spec, 3, out);
    Ok(())
}

fn finish_brace(mut n: Number, spec: &BraceSpec, group: usize, out: &mut String) {
    n.sign = if n.negative {
        "-"
    } else {
        match spec.sign {
            Some(b'+') => "+",
            Some(b' ') => " ",
            _ => "",
        }
    };
    let align = match spec.align {
        Some(a) => a,
        None if spec.zero => b'=',
        None => b'>',
    };
    let grouping = spec.grouping.map(|g| (g as char, group));
    n.layout(spec.fill(), align, spec.width, grouping, out);
}

/// A number's parts: `sign prefix int rest`, where `int` is the run of
/// digits that grouping and zero padding apply to and `rest` follows it
/// (fraction, exponent, `%`; all of `inf`, `nan` or a `c` character).
#[derive(Default)]
struct Number {
    negative: bool,
    sign: &'static str,
    prefix: &'static str,
    int: String,
    rest: String,
}

impl Number {
    /// A float's body split after its leading digits.
    fn float(negative: bool, body: String) -> Self {
        let split = body
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(body.len());
        let mut int = body;
        let rest = int.split_off(split);
        Number {
            negative,
            int,
            rest,
            ..Number::default()
        }
    }

    fn layout(
        &self,
        fill: char,
        align: u8,
        width: usize,
        grouping: Option<(char, usize)>,
        out: &mut String,
    ) {
        let fixed = self.sign.len() + self.prefix.len() + self.rest.chars().count();
        let min = if fill == '0' && align == b'=' {
            width.saturating_sub(fixed)
        } else {
            0
        };
        let mut body = String::new();
        match grouping {
            Some((sep, size)) => group_into(&self.int, sep, size, min, &mut body),
            None => {
                body.extend(std::iter::repeat_n('0', min.saturating_sub(self.int.len())));
                body.push_str(&self.int);
            }
        }
        body.push_str(&self.rest);
        let len = self.sign.len() + self.prefix.len() + body.chars().count();
        let pad = width.saturating_sub(len);
        let (before, between, after) = match align {
            b'<' => (0, 0, pad),
            b'^' => (pad / 2, 0, pad - pad / 2),
            b'=' => (0, pad, 0),
            _ => (pad, 0, 0),
        };
        out.extend(std::iter::repeat_n(fill, before));
        out.push_str(self.sign);
        out.push_str(self.prefix);
        out.extend(std::iter::repeat_n(fill, between));
        out.push_str(&body);
        out.extend(std::iter::repeat_n(fill, after));
    }
}

/// `digits` with `sep` every `size` digits from the right, zero-padded
/// (separators included) to at least `min` characters, never starting with
/// a separator: CPython's `_PyUnicode_InsertThousandsGrouping`.
fn group_into(digits: &str, sep: char, size: usize, min: usize, out: &mut String) {
    let mut d = digits.to_string();
    let grouped_len = |n: usize| n + n.saturating_sub(1) / size;
    while grouped_len(d.len()) < min {
        d.insert(0, '0');
    }
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % size == 0 {
            out.push(sep);
        }
        out.push(c);
    }
}

/// Text cut to `precision` characters and padded to `width` (`left`
/// overrides `align`).
fn pad_text(
    text: &str,
    precision: Option<usize>,
    width: usize,
    align: u8,
    left: bool,
    fill: char,
    out: &mut String,
) {
    let mut text = text;
    if let Some(p) = precision {
        if let Some((i, _)) = text.char_indices().nth(p) {
            text = &text[..i];
        }
    }
    let pad = width.saturating_sub(text.chars().count());
    let align = if left { b'<' } else { align };
    let (before, after) = match align {
        b'<' => (0, pad),
        b'^' => (pad / 2, pad - pad / 2),
        _ => (pad, 0),
    };
    out.extend(std::iter::repeat_n(fill, before));
    out.push_str(text);
    out.extend(std::iter::repeat_n(fill, after));
}

/// The digits of a non-negative float (no sign) for a conversion type:
/// `f F e E g G %`, 0 (`format()` without a type), `n` handled as `g`.
/// `dot0`: `format()`'s rules for type 0 (`str()`-like: `.0` on integral
/// values, scientific from `precision - 1` digits on).
fn float_body(a: f64, ty: u8, precision: Option<usize>, alt: bool, dot0: bool) -> String {
    let upper = matches!(ty, b'F' | b'E' | b'G');
    if !a.is_finite() {
        let s = if a.is_nan() { "nan" } else { "inf" };
        let mut s = if upper {
            s.to_uppercase()
        } else {
            s.to_string()
        };
        if ty == b'%' {
            s.push('%');
        }
        return s;
    }
    let mut s = String::new();
    match ty {
        b'f' | b'F' => fixed(a, precision.unwrap_or(6), alt, &mut s),
        b'%' => {
            fixed(a * 100.0, precision.unwrap_or(6), alt, &mut s);
            s.push('%');
        }
        b'e' | b'E' => exponent(a, precision.unwrap_or(6), alt, upper, &mut s),
        b'g' | b'G' => general(a, precision.unwrap_or(6), alt, upper, false, &mut s),
        _ => match precision {
            None => {
                float_repr(a, &mut s);
                // `#` keeps a point in `1.e-05` too.
                if alt && !s.contains('.') {
                    let e = s.find('e').unwrap_or(s.len());
                    s.insert(e, '.');
                }
            }
            Some(p) => general(a, p, alt, false, dot0, &mut s),
        },
    }
    s
}

fn fixed(a: f64, precision: usize, alt: bool, out: &mut String) {
    let _ = write!(out, "{a:.precision$}");
    if alt && precision == 0 {
        out.push('.');
    }
}

fn exponent(a: f64, precision: usize, alt: bool, upper: bool, out: &mut String) {
    let s = format!("{a:.precision$e}");
    let (mantissa, e) = s.split_once('e').expect("{:e} has an exponent");
    let e: i32 = e.parse().expect("exponent is an integer");
    out.push_str(mantissa);
    if alt && precision == 0 {
        out.push('.');
    }
    let _ = write!(
        out,
        "{}{}{:02}",
        if upper { 'E' } else { 'e' },
        if e < 0 { '-' } else { '+' },
        e.unsigned_abs()
    );
}

/// `%g` / `format(x, '.Ng')`, and with `dot0` `format(x, '.N')`.
fn general(a: f64, precision: usize, alt: bool, upper: bool, dot0: bool, out: &mut String) {
    let p = precision.max(1);
    let s = format!("{:.*e}", p - 1, a);
    let (mantissa, e) = s.split_once('e').expect("{:e} has an exponent");
    let e: i32 = e.parse().expect("exponent is an integer");
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !alt {
        while digits.len() > 1 && digits.ends_with('0') {
            digits.pop();
        }
    }
    let decpt = e + 1;
    let limit = if dot0 { p as i32 - 1 } else { p as i32 };
    if decpt <= -4 || decpt > limit {
        out.push_str(&digits[..1]);
        if digits.len() > 1 || alt {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "{}{}{:02}",
            if upper { 'E' } else { 'e' },
            if e < 0 { '-' } else { '+' },
            e.unsigned_abs()
        );
        return;
    }
    if decpt <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-decpt) as usize));
        out.push_str(&digits);
    } else if decpt as usize >= digits.len() {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', decpt as usize - digits.len()));
        if dot0 {
            out.push_str(".0");
        } else if alt {
            out.push('.');
        }
    } else {
        out.push_str(&digits[..decpt as usize]);
        out.push('.');
        out.push_str(&digits[decpt as usize..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: Val<'_>, spec: &str) -> String {
        let mut out = String::new();
        match brace(&v, None, &BraceSpec::parse(spec).unwrap(), &mut out) {
            Ok(()) => out,
            Err(e) => format!("ERR {e}"),
        }
    }

    fn p(v: Val<'_>, spec: PercentSpec) -> String {
        let mut out = String::new();
        match percent(&v, &spec, &mut out) {
            Ok(()) => out,
            Err(e) => format!("ERR {e}"),
        }
    }

    // Expected values: CPython 3.11's format(v, spec).
    #[test]
    fn format_spec_mini_language() {
        use Val::*;
        for (v, spec, want) in [
            (Str("ab"), "05", "ab000"),
            (Str("ab"), "^6", "  ab  "),
            (Str("abc"), ".1", "a"),
            (Str("\u{e9}"), "*^5", "**\u{e9}**"),
            (Bool(true), "5", "    1"),
            (Bool(true), "", "True"),
            (Int(65), "c", "A"),
            (Int(1234567), ",d", "1,234,567"),
            (Int(1234567), "_x", "12_d687"),
            (Int(1234567), "_b", "1_0010_1101_0110_1000_0111"),
            (Int(-5), "=+8", "-      5"),
            (Int(-5), "08", "-0000005"),
            (Int(5), "#010x", "0x00000005"),
            (Int(1234), "08,d", "0,001,234"),
            (Int(1234), "010,d", "00,001,234"),
            (Int(1234), "07,d", "001,234"),
            (Int(-1234), "010,d", "-0,001,234"),
            (Int(255), "#010_x", "0x000_00ff"),
            (Int(1234), "*=8,", "***1,234"),
            (Int(3), "=^7", "===3==="),
            (Int(5), ".2%", "500.00%"),
            (Int(12), "#X", "0XC"),
            (Float(1.5), "", "1.5"),
            (Float(1.0), ".3", "1.0"),
            (Float(10.0), ".2", "1e+01"),
            (Float(0.5), ".0", "0.5"),
            (Float(1.0), "#.0", "1.e+00"),
            (Float(123456.0), ".3", "1.23e+05"),
            (Float(1e16), "", "1e+16"),
            (Float(1e16), ".20", "10000000000000000.0"),
            (Float(0.1), "%", "10.000000%"),
            (Float(1234.5), ",.2f", "1,234.50"),
            (Float(1234.5), "_", "1_234.5"),
            (Float(1234.5), "010,.1f", "0,001,234.5"),
            (Float(-0.0), ".1f", "-0.0"),
            (Float(f64::NAN), "+", "+nan"),
            (Float(f64::INFINITY), "010", "0000000inf"),
            (Float(1.5), "#.0f", "2."),
            (Float(1e-5), "#", "1.e-05"),
            (Float(1e16), "0=+#10", "+0001.e+16"),
            (Float(2.0), "#g", "2.00000"),
            (Float(12345.678), ",g", "12,345.7"),
            (Float(1e20), "n", "1e+20"),
            (Float(-1.5), "010", "-0000001.5"),
            (Float(1709720253.045679), "15.3f", " 1709720253.046"),
            (
                Str("ab"),
                "=5",
                "ERR '=' alignment not allowed in string format specifier",
            ),
            (
                Str("ab"),
                "+5",
                "ERR Sign not allowed in string format specifier",
            ),
            (
                Int(5),
                "+c",
                "ERR Sign not allowed with integer format specifier 'c'",
            ),
            (Int(1234), ",x", "ERR Cannot specify ',' with 'x'."),
            (
                Int(1),
                ".2",
                "ERR Precision not allowed in integer format specifier",
            ),
            (
                Float(1.0),
                "d",
                "ERR Unknown format code 'd' for object of type 'float'",
            ),
            (
                Int(1),
                "s",
                "ERR Unknown format code 's' for object of type 'int'",
            ),
            (
                None,
                "5",
                "ERR unsupported format string passed to NoneType.__format__",
            ),
        ] {
            assert_eq!(b(v, spec), want, "format({v:?}, {spec:?})");
        }
    }

    // Expected values: CPython 3.11's `fmt % (v,)`.
    #[test]
    fn percent_operator() {
        use Val::*;
        let s = |conv: u8| PercentSpec {
            conv,
            ..PercentSpec::default()
        };
        for (v, spec, want) in [
            (
                Int(5),
                PercentSpec {
                    precision: Some(3),
                    ..s(b'd')
                },
                "005",
            ),
            (
                Int(-5),
                PercentSpec {
                    width: 5,
                    precision: Some(3),
                    ..s(b'd')
                },
                " -005",
            ),
            (
                Int(5),
                PercentSpec {
                    alt: true,
                    precision: Some(3),
                    ..s(b'x')
                },
                "0x005",
            ),
            (
                Int(255),
                PercentSpec {
                    alt: true,
                    zero: true,
                    width: 10,
                    ..s(b'x')
                },
                "0x000000ff",
            ),
            (
                Float(0.5),
                PercentSpec {
                    plus: true,
                    precision: Some(0),
                    ..s(b'f')
                },
                "+0",
            ),
            (Float(-0.0), s(b'd'), "0"),
            (Float(-0.0), s(b'f'), "-0.000000"),
            (Float(-0.0), s(b's'), "-0.0"),
            (
                Float(1.23456),
                PercentSpec {
                    precision: Some(3),
                    ..s(b's')
                },
                "1.2",
            ),
            (
                Str("a"),
                PercentSpec {
                    width: 5,
                    ..s(b'r')
                },
                "  'a'",
            ),
            (Int(65), s(b'c'), "A"),
            (Bool(true), s(b'x'), "1"),
            (Bool(true), s(b'f'), "1.000000"),
            (
                Float(1.0),
                PercentSpec {
                    alt: true,
                    ..s(b'g')
                },
                "1.00000",
            ),
            (
                Float(2.0),
                PercentSpec {
                    alt: true,
                    precision: Some(0),
                    ..s(b'f')
                },
                "2.",
            ),
            (
                Int(5),
                PercentSpec {
                    space: true,
                    zero: true,
                    width: 5,
                    ..s(b'd')
                },
                " 0005",
            ),
            (Float(1e20), s(b'd'), "100000000000000000000"),
            (Float(2.9), s(b'i'), "2"),
            (Int(-255), s(b'x'), "-ff"),
            (
                Float(12345.0),
                PercentSpec {
                    precision: Some(0),
                    ..s(b'e')
                },
                "1e+04",
            ),
            (Float(1e-10), s(b'G'), "1E-10"),
            (
                Float(123.456),
                PercentSpec {
                    width: 10,
                    precision: Some(4),
                    ..s(b'g')
                },
                "     123.5",
            ),
            (Float(1e16), s(b's'), "1e+16"),
            (
                None,
                PercentSpec {
                    width: 5,
                    ..s(b's')
                },
                " None",
            ),
            (
                Str("\u{e9}\u{6f22}\u{5b57}"),
                PercentSpec {
                    precision: Some(2),
                    ..s(b's')
                },
                "\u{e9}\u{6f22}",
            ),
            (
                Float(-1234.5),
                PercentSpec {
                    zero: true,
                    width: 15,
                    precision: Some(3),
                    ..s(b'f')
                },
                "-0000001234.500",
            ),
            (
                Float(0.125),
                PercentSpec {
                    precision: Some(2),
                    ..s(b'f')
                },
                "0.12",
            ),
            (
                Str("x"),
                s(b'd'),
                "ERR %d format: a real number is required, not str",
            ),
            (
                Float(1.5),
                s(b'x'),
                "ERR %x format: an integer is required, not float",
            ),
        ] {
            assert_eq!(p(v, spec), want, "{spec:?} % {v:?}");
        }
    }
}
