//! Python's number and string formatting for both field syntaxes: the `%`
//! operator's conversions (`%-08.3f`, `%#x`, `%5.2s`...) and `format()`'s
//! format-spec mini-language (`{lineno:>5}`, `{created:,.3f}`,
//! `{n:#010_x}`...), over the value types log record attributes have.
//!
//! Each letter and symbol of a spec is an enum variant, read from the text
//! in one place ([`BraceSpec::parse`], [`PercentConv::parse`] for the `%`
//! parser in `percent.rs`) and matched exhaustively when formatting.
//!
//! A value a conversion cannot take (CPython raises TypeError or
//! ValueError) is an `Err` with CPython's message; the caller decides.

use std::fmt::Write;

use crate::value::{float_repr, py_ascii, py_repr, py_str, Val};

/// What CPython would raise, as its message.
pub(crate) type Mismatch = String;

/// Which builtin turns a value into text: `!s`/`!r`/`!a` in a `{` field,
/// `%s`/`%r`/`%a` in a `%` one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conversion {
    /// `str()`.
    Str,
    /// `repr()`.
    Repr,
    /// `ascii()`: `repr()` with non-ASCII characters escaped.
    Ascii,
}

impl Conversion {
    /// `s`, `r` or `a`.
    pub(crate) fn parse(c: char) -> Option<Self> {
        match c {
            's' => Some(Conversion::Str),
            'r' => Some(Conversion::Repr),
            'a' => Some(Conversion::Ascii),
            _ => None,
        }
    }

    fn write(self, v: &Val<'_>, out: &mut String) {
        match self {
            Conversion::Str => py_str(v, out),
            Conversion::Repr => py_repr(v, out),
            Conversion::Ascii => py_ascii(v, out),
        }
    }
}

/// The digits of an integer: its base and, for hexadecimal, the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Radix {
    /// `b` (`format()` only).
    Binary,
    /// `o`.
    Octal,
    /// `d` (and `%i`, `%u`, `format()`'s `n` and no type).
    Decimal,
    /// `x`.
    Hex,
    /// `X`.
    HexUpper,
}

impl Radix {
    fn digits(self, a: u128) -> String {
        match self {
            Radix::Binary => format!("{a:b}"),
            Radix::Octal => format!("{a:o}"),
            Radix::Decimal => a.to_string(),
            Radix::Hex => format!("{a:x}"),
            Radix::HexUpper => format!("{a:X}"),
        }
    }

    /// What `#` (the alternate form) puts before the digits.
    fn prefix(self) -> &'static str {
        match self {
            Radix::Binary => "0b",
            Radix::Octal => "0o",
            Radix::Decimal => "",
            Radix::Hex => "0x",
            Radix::HexUpper => "0X",
        }
    }

    /// Digits between `format()`'s grouping separators.
    fn group_size(self) -> usize {
        match self {
            Radix::Decimal => 3,
            Radix::Binary | Radix::Octal | Radix::Hex | Radix::HexUpper => 4,
        }
    }
}

/// How a float is written, shared by both syntaxes: `e E f F g G`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatStyle {
    /// `e`: `1.500000e+00`.
    Exponent,
    /// `E`: `1.500000E+00`, `INF`.
    ExponentUpper,
    /// `f`: `1.500000`.
    Fixed,
    /// `F`: `1.500000`, `INF`.
    FixedUpper,
    /// `g`: fixed or exponent, whichever is shorter, without trailing zeros.
    General,
    /// `G`: `g` in upper case.
    GeneralUpper,
}

impl FloatStyle {
    fn upper(self) -> bool {
        match self {
            FloatStyle::ExponentUpper | FloatStyle::FixedUpper | FloatStyle::GeneralUpper => true,
            FloatStyle::Exponent | FloatStyle::Fixed | FloatStyle::General => false,
        }
    }

    fn as_char(self) -> char {
        match self {
            FloatStyle::Exponent => 'e',
            FloatStyle::ExponentUpper => 'E',
            FloatStyle::Fixed => 'f',
            FloatStyle::FixedUpper => 'F',
            FloatStyle::General => 'g',
            FloatStyle::GeneralUpper => 'G',
        }
    }
}

/// A `%` conversion character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PercentConv {
    /// `s`, `r`, `a`: the value's text.
    Text(Conversion),
    /// `c`: the character of a code point (or a one-character string).
    Char,
    /// `d`: a decimal integer.
    Decimal,
    /// `i`: the same as `d`.
    Integer,
    /// `u`: the same as `d` (obsolete).
    Unsigned,
    /// `o`.
    Octal,
    /// `x`.
    Hex,
    /// `X`.
    HexUpper,
    /// `e E f F g G`.
    Float(FloatStyle),
}

impl PercentConv {
    /// The conversion a byte names, if it is one: `s r a c d i u o x X e E
    /// f F g G`.
    pub(crate) fn parse(b: u8) -> Option<Self> {
        Some(match b {
            b's' => PercentConv::Text(Conversion::Str),
            b'r' => PercentConv::Text(Conversion::Repr),
            b'a' => PercentConv::Text(Conversion::Ascii),
            b'c' => PercentConv::Char,
            b'd' => PercentConv::Decimal,
            b'i' => PercentConv::Integer,
            b'u' => PercentConv::Unsigned,
            b'o' => PercentConv::Octal,
            b'x' => PercentConv::Hex,
            b'X' => PercentConv::HexUpper,
            b'e' => PercentConv::Float(FloatStyle::Exponent),
            b'E' => PercentConv::Float(FloatStyle::ExponentUpper),
            b'f' => PercentConv::Float(FloatStyle::Fixed),
            b'F' => PercentConv::Float(FloatStyle::FixedUpper),
            b'g' => PercentConv::Float(FloatStyle::General),
            b'G' => PercentConv::Float(FloatStyle::GeneralUpper),
            _ => return None,
        })
    }

    /// The character, for messages.
    fn as_char(self) -> char {
        match self {
            PercentConv::Text(Conversion::Str) => 's',
            PercentConv::Text(Conversion::Repr) => 'r',
            PercentConv::Text(Conversion::Ascii) => 'a',
            PercentConv::Char => 'c',
            PercentConv::Decimal => 'd',
            PercentConv::Integer => 'i',
            PercentConv::Unsigned => 'u',
            PercentConv::Octal => 'o',
            PercentConv::Hex => 'x',
            PercentConv::HexUpper => 'X',
            PercentConv::Float(style) => style.as_char(),
        }
    }
}

/// A `%` conversion: `%(name)[flags][width][.precision]conversion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PercentSpec {
    pub left: bool,
    pub zero: bool,
    pub plus: bool,
    pub space: bool,
    pub alt: bool,
    pub width: usize,
    pub precision: Option<usize>,
    pub conv: PercentConv,
}

impl Default for PercentSpec {
    /// A plain `%s`.
    fn default() -> Self {
        PercentSpec {
            left: false,
            zero: false,
            plus: false,
            space: false,
            alt: false,
            width: 0,
            precision: None,
            conv: PercentConv::Text(Conversion::Str),
        }
    }
}

impl PercentSpec {
    /// A plain `%s` (no flags, width or precision): `str()` as it is.
    pub(crate) fn is_plain_s(&self) -> bool {
        *self == PercentSpec::default()
    }
}

/// Where `format()` puts the padding: `<`, `>`, `^` or `=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    /// `<`: padding after.
    Left,
    /// `>`: padding before.
    Right,
    /// `^`: padding split, the odd one after.
    Center,
    /// `=`: padding between the sign (and prefix) and the digits.
    AfterSign,
}

impl Align {
    fn parse(c: char) -> Option<Self> {
        match c {
            '<' => Some(Align::Left),
            '>' => Some(Align::Right),
            '^' => Some(Align::Center),
            '=' => Some(Align::AfterSign),
            _ => None,
        }
    }
}

/// Which numbers `format()` gives a sign: `+`, `-` or ` `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sign {
    /// `+`: every number, `+` on positive ones.
    Plus,
    /// `-`: negative numbers only (as without a sign option).
    Minus,
    /// ` `: a space on positive numbers.
    Space,
}

impl Sign {
    fn parse(c: char) -> Option<Self> {
        match c {
            '+' => Some(Sign::Plus),
            '-' => Some(Sign::Minus),
            ' ' => Some(Sign::Space),
            _ => None,
        }
    }
}

/// `format()`'s digit-group separator: `,` or `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grouping {
    /// `,`: thousands, decimal presentation only.
    Comma,
    /// `_`: thousands, or groups of 4 digits in `b o x X`.
    Underscore,
}

impl Grouping {
    fn parse(c: char) -> Option<Self> {
        match c {
            ',' => Some(Grouping::Comma),
            '_' => Some(Grouping::Underscore),
            _ => None,
        }
    }

    fn as_char(self) -> char {
        match self {
            Grouping::Comma => ',',
            Grouping::Underscore => '_',
        }
    }
}

/// A `format()` presentation type, the spec's last letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presentation {
    /// `s`: a string.
    Str,
    /// `c`: the character of an integer code point.
    Char,
    /// `b d o x X`: an integer's digits.
    Int(Radix),
    /// `n`: `d` for an integer, `g` for a float (the C locale's grouping:
    /// none).
    Number,
    /// `e E f F g G`.
    Float(FloatStyle),
    /// `%`: a float times 100 as `f`, then `%`.
    Percent,
}

impl Presentation {
    fn parse(c: char) -> Option<Self> {
        Some(match c {
            's' => Presentation::Str,
            'c' => Presentation::Char,
            'b' => Presentation::Int(Radix::Binary),
            'd' => Presentation::Int(Radix::Decimal),
            'o' => Presentation::Int(Radix::Octal),
            'x' => Presentation::Int(Radix::Hex),
            'X' => Presentation::Int(Radix::HexUpper),
            'n' => Presentation::Number,
            'e' => Presentation::Float(FloatStyle::Exponent),
            'E' => Presentation::Float(FloatStyle::ExponentUpper),
            'f' => Presentation::Float(FloatStyle::Fixed),
            'F' => Presentation::Float(FloatStyle::FixedUpper),
            'g' => Presentation::Float(FloatStyle::General),
            'G' => Presentation::Float(FloatStyle::GeneralUpper),
            '%' => Presentation::Percent,
            _ => return None,
        })
    }

    /// The letter, for messages.
    fn as_char(self) -> char {
        match self {
            Presentation::Str => 's',
            Presentation::Char => 'c',
            Presentation::Int(Radix::Binary) => 'b',
            Presentation::Int(Radix::Decimal) => 'd',
            Presentation::Int(Radix::Octal) => 'o',
            Presentation::Int(Radix::Hex) => 'x',
            Presentation::Int(Radix::HexUpper) => 'X',
            Presentation::Number => 'n',
            Presentation::Float(style) => style.as_char(),
            Presentation::Percent => '%',
        }
    }
}

/// A `format()` spec: `[[fill]align][sign][#][0][width][grouping][.precision][type]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BraceSpec {
    /// The fill character, when one was given.
    pub fill: Option<char>,
    pub align: Option<Align>,
    pub sign: Option<Sign>,
    pub alt: bool,
    pub zero: bool,
    pub width: usize,
    pub grouping: Option<Grouping>,
    pub precision: Option<usize>,
    /// `None`: no type (`str()`-like for every value type).
    pub ty: Option<Presentation>,
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
            ty: None,
            empty: spec.is_empty(),
        };
        let chars: Vec<char> = spec.chars().collect();
        let mut i = 0;
        if let Some(align) = chars.get(1).copied().and_then(Align::parse) {
            s.fill = Some(chars[0]);
            s.align = Some(align);
            i = 2;
        } else if let Some(align) = chars.first().copied().and_then(Align::parse) {
            s.align = Some(align);
            i = 1;
        }
        if let Some(sign) = chars.get(i).copied().and_then(Sign::parse) {
            s.sign = Some(sign);
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
        if let Some(grouping) = chars.get(i).copied().and_then(Grouping::parse) {
            s.grouping = Some(grouping);
            i += 1;
            if chars.get(i).copied().and_then(Grouping::parse).is_some() {
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
                let ty = Presentation::parse(c)
                    .ok_or_else(|| format!("bad specifier: unknown format code '{c}'"))?;
                s.ty = Some(ty);
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
        PercentConv::Text(conversion) => return percent_text(v, conversion, spec, out),
        PercentConv::Char => return percent_char(v, spec, out),
        PercentConv::Decimal | PercentConv::Integer | PercentConv::Unsigned => {
            percent_integer(v, Radix::Decimal, spec)?
        }
        PercentConv::Octal => percent_integer(v, Radix::Octal, spec)?,
        PercentConv::Hex => percent_integer(v, Radix::Hex, spec)?,
        PercentConv::HexUpper => percent_integer(v, Radix::HexUpper, spec)?,
        PercentConv::Float(style) => percent_float(v, style, spec)?,
    };
    finish_percent(n, spec, out)
}

/// The side `%` pads text on: `-` is left, else right.
fn percent_align(spec: &PercentSpec) -> Align {
    if spec.left {
        Align::Left
    } else {
        Align::Right
    }
}

/// `%s`, `%r` and `%a`: text, padded.
fn percent_text(
    v: &Val<'_>,
    conversion: Conversion,
    spec: &PercentSpec,
    out: &mut String,
) -> Result<(), Mismatch> {
    let mut text = String::new();
    conversion.write(v, &mut text);
    pad_text(
        &text,
        spec.precision,
        spec.width,
        percent_align(spec),
        ' ',
        out,
    );
    Ok(())
}

/// `%c`: one character, padded.
fn percent_char(v: &Val<'_>, spec: &PercentSpec, out: &mut String) -> Result<(), Mismatch> {
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
        percent_align(spec),
        ' ',
        out,
    );
    Ok(())
}

/// `%d %i %u %x %X %o`: the number's digits, sign and prefix.
fn percent_integer(v: &Val<'_>, radix: Radix, spec: &PercentSpec) -> Result<Number, Mismatch> {
    let mut n = Number::default();
    let i = match v {
        Val::Int(i) => *i,
        Val::Bool(b) => *b as i128,
        Val::Float(f) if radix == Radix::Decimal => {
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
            let what = if radix == Radix::Decimal {
                "a real number is required"
            } else {
                "an integer is required"
            };
            return Err(format!(
                "%{} format: {what}, not {}",
                spec.conv.as_char(),
                v.type_name()
            ));
        }
    };
    n.negative = i < 0;
    n.int = radix.digits(i.unsigned_abs());
    if let Some(p) = spec.precision {
        if n.int.len() < p {
            n.int.insert_str(0, &"0".repeat(p - n.int.len()));
        }
    }
    if spec.alt {
        n.prefix = radix.prefix();
    }
    Ok(n)
}

/// `%e %E %f %F %g %G`.
fn percent_float(v: &Val<'_>, style: FloatStyle, spec: &PercentSpec) -> Result<Number, Mismatch> {
    let f = as_float(v).ok_or_else(|| {
        format!(
            "%{} format: a real number is required, not {}",
            style.as_char(),
            v.type_name()
        )
    })?;
    let body = float_body(f.abs(), Some(style), spec.precision, spec.alt);
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
        (' ', Align::Left)
    } else if spec.zero {
        ('0', Align::AfterSign)
    } else {
        (' ', Align::Right)
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
    conversion: Option<Conversion>,
    spec: &BraceSpec,
    out: &mut String,
) -> Result<(), Mismatch> {
    if let Some(c) = conversion {
        let mut text = String::new();
        c.write(v, &mut text);
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

fn unknown_code(ty: Presentation, type_name: &str) -> Mismatch {
    format!(
        "Unknown format code '{}' for object of type '{type_name}'",
        ty.as_char()
    )
}

fn brace_str(s: &str, spec: &BraceSpec, out: &mut String) -> Result<(), Mismatch> {
    if let Some(ty) = spec.ty.filter(|&ty| ty != Presentation::Str) {
        return Err(unknown_code(ty, "str"));
    }
    if spec.sign.is_some() {
        return Err("Sign not allowed in string format specifier".into());
    }
    if spec.alt {
        return Err("Alternate form (#) not allowed in string format specifier".into());
    }
    if let Some(g) = spec.grouping {
        return Err(format!("Cannot specify '{}' with 's'.", g.as_char()));
    }
    if spec.align == Some(Align::AfterSign) {
        return Err("'=' alignment not allowed in string format specifier".into());
    }
    let align = spec.align.unwrap_or(Align::Left);
    pad_text(s, spec.precision, spec.width, align, spec.fill(), out);
    Ok(())
}

fn brace_int(i: i128, type_name: &str, spec: &BraceSpec, out: &mut String) -> Result<(), Mismatch> {
    // The integer's digits in a radix, or (None) its character.
    let radix = match spec.ty {
        Some(Presentation::Float(_) | Presentation::Percent) => {
            return brace_float(i as f64, spec, out)
        }
        Some(ty @ Presentation::Str) => return Err(unknown_code(ty, type_name)),
        Some(Presentation::Char) => None,
        Some(Presentation::Int(radix)) => Some(radix),
        Some(Presentation::Number) | None => Some(Radix::Decimal),
    };
    if spec.precision.is_some() {
        return Err("Precision not allowed in integer format specifier".into());
    }
    if let (Some(g), Some(ty)) = (spec.grouping, spec.ty) {
        let bad = match ty {
            Presentation::Number | Presentation::Char => true,
            Presentation::Int(radix) => g == Grouping::Comma && radix != Radix::Decimal,
            // Returned above.
            Presentation::Str | Presentation::Float(_) | Presentation::Percent => false,
        };
        if bad {
            return Err(format!(
                "Cannot specify '{}' with '{}'.",
                g.as_char(),
                ty.as_char()
            ));
        }
    }
    let mut n = Number::default();
    match radix {
        None => {
            if spec.sign.is_some() {
                return Err("Sign not allowed with integer format specifier 'c'".into());
            }
            if spec.alt {
                return Err(
                    "Alternate form (#) not allowed with integer format specifier 'c'".into(),
                );
            }
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .ok_or("%c arg not in range(0x110000)")?;
            n.rest.push(c);
        }
        Some(radix) => {
            n.negative = i < 0;
            n.int = radix.digits(i.unsigned_abs());
            if spec.alt {
                n.prefix = radix.prefix();
            }
        }
    }
    finish_brace(n, spec, radix.map_or(3, Radix::group_size), out);
    Ok(())
}

fn brace_float(f: f64, spec: &BraceSpec, out: &mut String) -> Result<(), Mismatch> {
    let a = f.abs();
    let body = match spec.ty {
        None => float_body(a, None, spec.precision, spec.alt),
        Some(Presentation::Float(style)) => float_body(a, Some(style), spec.precision, spec.alt),
        Some(Presentation::Number) => {
            if let Some(g) = spec.grouping {
                return Err(format!("Cannot specify '{}' with 'n'.", g.as_char()));
            }
            float_body(a, Some(FloatStyle::General), spec.precision, spec.alt)
        }
        Some(Presentation::Percent) => {
            let mut body = float_body(a * 100.0, Some(FloatStyle::Fixed), spec.precision, spec.alt);
            body.push('%');
            body
        }
        Some(ty @ (Presentation::Str | Presentation::Char | Presentation::Int(_))) => {
            return Err(unknown_code(ty, "float"))
        }
    };
    let n = Number::float(f.is_sign_negative() && !f.is_nan(), body);
    finish_brace(n, spec, 3, out);
    Ok(())
}

fn finish_brace(mut n: Number, spec: &BraceSpec, group: usize, out: &mut String) {
    n.sign = if n.negative {
        "-"
    } else {
        match spec.sign {
            Some(Sign::Plus) => "+",
            Some(Sign::Space) => " ",
            Some(Sign::Minus) | None => "",
        }
    };
    let align = match spec.align {
        Some(a) => a,
        None if spec.zero => Align::AfterSign,
        None => Align::Right,
    };
    let grouping = spec.grouping.map(|g| (g.as_char(), group));
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
        align: Align,
        width: usize,
        grouping: Option<(char, usize)>,
        out: &mut String,
    ) {
        let fixed = self.sign.len() + self.prefix.len() + self.rest.chars().count();
        let min = if fill == '0' && align == Align::AfterSign {
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
            Align::Left => (0, 0, pad),
            Align::Center => (pad / 2, 0, pad - pad / 2),
            Align::AfterSign => (0, pad, 0),
            Align::Right => (pad, 0, 0),
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

/// Text cut to `precision` characters and padded to `width`.
fn pad_text(
    text: &str,
    precision: Option<usize>,
    width: usize,
    align: Align,
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
    let (before, after) = match align {
        Align::Left => (0, pad),
        Align::Center => (pad / 2, pad - pad / 2),
        // Text has no sign to pad after.
        Align::Right | Align::AfterSign => (pad, 0),
    };
    out.extend(std::iter::repeat_n(fill, before));
    out.push_str(text);
    out.extend(std::iter::repeat_n(fill, after));
}

/// The digits of a non-negative float (no sign) in `style` (precision 6
/// unless given), or with `None` as `format()` without a type writes it:
/// `repr()` without a precision, else `str()`-like `g` (`.0` on integral
/// values, scientific from `precision - 1` digits on).
fn float_body(a: f64, style: Option<FloatStyle>, precision: Option<usize>, alt: bool) -> String {
    if !a.is_finite() {
        let s = if a.is_nan() { "nan" } else { "inf" };
        return if style.is_some_and(FloatStyle::upper) {
            s.to_uppercase()
        } else {
            s.to_string()
        };
    }
    let mut s = String::new();
    let p = precision.unwrap_or(6);
    match style {
        Some(FloatStyle::Fixed | FloatStyle::FixedUpper) => fixed(a, p, alt, &mut s),
        Some(FloatStyle::Exponent) => exponent(a, p, alt, false, &mut s),
        Some(FloatStyle::ExponentUpper) => exponent(a, p, alt, true, &mut s),
        Some(FloatStyle::General) => general(a, p, alt, false, false, &mut s),
        Some(FloatStyle::GeneralUpper) => general(a, p, alt, true, false, &mut s),
        None => match precision {
            None => {
                float_repr(a, &mut s);
                // `#` keeps a point in `1.e-05` too.
                if alt && !s.contains('.') {
                    let e = s.find('e').unwrap_or(s.len());
                    s.insert(e, '.');
                }
            }
            Some(p) => general(a, p, alt, false, true, &mut s),
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
            conv: PercentConv::parse(conv).unwrap(),
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
