//! The UTF-8 of a `LogRecord`'s name attributes (logger, file, function,
//! module, thread, process and task names), cached.
//!
//! They repeat from record to record, and encoding seven strings on every
//! call would cost more than the rest of the write. Most are the very same
//! objects each time (a logger's name, a code object's file name), found by
//! address; some are equal strings rebuilt for every record (`module` is cut
//! from the path each time), found by hash and equality. Each attribute keeps
//! its last [`WAYS`] distinct values, replaced in turn, so the cache stays
//! small whatever the program logs. An entry keeps a reference to its object,
//! so that address cannot be reused by another string while the entry exists.

use std::borrow::Cow;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

/// Distinct values remembered per attribute (threads, loggers, files...).
const WAYS: usize = 8;

struct Entry {
    object: Py<PyAny>,
    hash: isize,
    utf8: Box<[u8]>,
}

#[derive(Default)]
struct Attr {
    entries: Vec<Entry>,
    next: usize,
}

impl Attr {
    /// The entry for `obj`, added if new; `None` when `obj` is not a `str`.
    fn find(&mut self, obj: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        let ptr = obj.as_ptr();
        if let Some(i) = self.entries.iter().position(|e| e.object.as_ptr() == ptr) {
            return Ok(Some(i));
        }
        // Exact str only: a subclass's __hash__ or __eq__ would run Python
        // code while the cache is locked.
        let Ok(text) = obj.cast_exact::<PyString>() else {
            return Ok(None);
        };
        let hash = text.hash()?;
        for (i, e) in self.entries.iter().enumerate() {
            if e.hash == hash && e.object.bind(obj.py()).eq(text)? {
                return Ok(Some(i));
            }
        }
        let entry = Entry {
            object: obj.clone().unbind(),
            hash,
            utf8: utf8(text)?.as_bytes().into(),
        };
        let i = if self.entries.len() < WAYS {
            self.entries.push(entry);
            self.entries.len() - 1
        } else {
            let i = self.next;
            self.entries[i] = entry;
            self.next = (i + 1) % WAYS;
            i
        };
        Ok(Some(i))
    }
}

/// UTF-8 of `text`; a lone surrogate (from undecodable bytes in a file name,
/// say) becomes one U+FFFD, as in the Python path.
pub fn utf8<'a>(text: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, str>> {
    if let Ok(s) = text.to_cow() {
        return Ok(s);
    }
    let py = text.py();
    let utf16 = text.call_method1(
        intern!(py, "encode"),
        (intern!(py, "utf-16-le"), intern!(py, "surrogatepass")),
    )?;
    let utf16 = utf16.cast::<PyBytes>()?.as_bytes();
    let units = utf16
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    Ok(char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect::<String>()
        .into())
}

/// A message's UTF-8: the bytes object `str.encode` makes (one allocation,
/// no copy), or for text with lone surrogates the U+FFFD-replaced string.
pub enum Utf8<'py> {
    Bytes(Bound<'py, PyBytes>),
    Replaced(String),
}

impl Utf8<'_> {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Utf8::Bytes(b) => b.as_bytes(),
            Utf8::Replaced(s) => s.as_bytes(),
        }
    }
}

/// [`Utf8`] of a message.
pub fn encode<'py>(text: &Bound<'py, PyString>) -> PyResult<Utf8<'py>> {
    match text.encode_utf8() {
        Ok(bytes) => Ok(Utf8::Bytes(bytes)),
        Err(_) => Ok(Utf8::Replaced(utf8(text)?.into_owned())),
    }
}

/// Whether `obj` can be a name attribute here: None or an exact `str`.
pub fn is_text(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_none() || obj.is_exact_instance_of::<PyString>()
}

/// The UTF-8 of the attributes without the cache (when it is busy).
/// Callers checked [`is_text`].
pub fn utf8_uncached(objs: &[Option<&Bound<'_, PyAny>>; 7]) -> PyResult<[Vec<u8>; 7]> {
    let mut out: [Vec<u8>; 7] = Default::default();
    for (o, obj) in out.iter_mut().zip(objs) {
        if let Some(text) = obj.and_then(|o| o.cast_exact::<PyString>().ok()) {
            *o = utf8(text)?.as_bytes().to_vec();
        }
    }
    Ok(out)
}

/// The cache of the seven attributes.
#[derive(Default)]
pub struct NameCache {
    attrs: [Attr; 7],
}

impl NameCache {
    /// The UTF-8 of `objs` (missing or None: empty), in their order: name,
    /// pathname, funcName, module, threadName, processName, taskName.
    /// `None` when one is neither a `str` nor None.
    pub fn utf8(&mut self, objs: &[Option<&Bound<'_, PyAny>>; 7]) -> PyResult<Option<[&[u8]; 7]>> {
        let mut found = [None; 7];
        for ((slot, attr), obj) in found.iter_mut().zip(&mut self.attrs).zip(objs) {
            if let Some(obj) = obj.filter(|o| !o.is_none()) {
                match attr.find(obj)? {
                    Some(i) => *slot = Some(i),
                    None => return Ok(None),
                }
            }
        }
        let mut out: [&[u8]; 7] = [b""; 7];
        for ((o, attr), i) in out.iter_mut().zip(&self.attrs).zip(found) {
            if let Some(i) = i {
                *o = &attr.entries[i].utf8;
            }
        }
        Ok(Some(out))
    }
}
