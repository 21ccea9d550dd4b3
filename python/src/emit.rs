//! RingHandler's fast path, in two steps: one pass over a LogRecord's
//! attributes decides whether it has the plain shape the extension writes
//! itself ([`Plain::of`]), then the write ([`Producer::write_plain`]).
//! A record of any other shape (exception or stack text, `extra=` fields, a
//! factory's subclass, unexpected types) is left to the Python path.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use ringflush_producer::WriteError;

use crate::msg_args;
use crate::names;
use crate::record::{Field, Fields};
use crate::{log_record, Producer};

/// The fields of a plain LogRecord, checked and converted.
struct Plain<'a, 'py> {
    level: u8,
    line: u32,
    thread_id: u64,
    created_ns: u64,
    /// In [`names::NameCache::utf8`]'s order; all `str` (or absent).
    names: [Option<&'a Bound<'py, PyAny>>; 7],
    msg: &'a Bound<'py, PyAny>,
    /// `record.args` when truthy.
    args: Option<&'a Bound<'py, PyAny>>,
}

impl<'a, 'py> Plain<'a, 'py> {
    /// The record's fields if it has the plain shape, else `None`.
    fn of(fields: &'a Fields<'py>) -> PyResult<Option<Self>> {
        let get = |field| fields.get(field);
        if [Field::ExcInfo, Field::ExcText, Field::StackInfo]
            .into_iter()
            .any(|f| get(f).is_some_and(|v| !v.is_none()))
        {
            return Ok(None);
        }
        let number = |field| -> Option<u64> {
            match get(field) {
                Some(v) if v.is_none() => Some(0),
                Some(v) => v.extract::<u64>().ok(),
                None => Some(0),
            }
        };
        // The flusher prints the level's name itself: a record whose name
        // is another (a filter renamed it) takes the Python path.
        let level = get(Field::Levelno)
            .and_then(|v| v.extract::<u8>().ok())
            .filter(|&level| named_as_flusher_names(get(Field::Levelname), level));
        let line = number(Field::Lineno).and_then(|l| u32::try_from(l).ok());
        let (Some(level), Some(line), Some(thread_id), Some(created_ns), Some(msg)) = (
            level,
            line,
            number(Field::Thread),
            created_ns(fields),
            get(Field::Msg),
        ) else {
            return Ok(None);
        };
        let names = [
            Field::Name,
            Field::Pathname,
            Field::FuncName,
            Field::Module,
            Field::ThreadName,
            Field::ProcessName,
            Field::TaskName,
        ]
        .map(get);
        // The flusher prints a default of its own for an empty name where
        // CPython prints "None": names must be text, taskName may be None.
        let [ref others @ .., task] = names;
        if !others.iter().all(|o| o.is_some_and(is_str)) || !task.is_none_or(names::is_text) {
            return Ok(None);
        }
        let args = match get(Field::Args) {
            Some(args) if args.is_truthy()? => Some(args),
            _ => None,
        };
        Ok(Some(Self {
            level,
            line,
            thread_id,
            created_ns,
            names,
            msg,
            args,
        }))
    }
}

fn is_str(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_exact_instance_of::<PyString>()
}

/// Whether `levelname` is the name the flusher prints for `level`.
fn named_as_flusher_names(levelname: Option<&Bound<'_, PyAny>>, level: u8) -> bool {
    let Some(name) = levelname.and_then(|v| v.cast::<PyString>().ok()) else {
        return false;
    };
    name.to_cow()
        .is_ok_and(|s| *s == *ringflush_ring::codec::level::name(level))
}

/// Python 3.13+ records carry `created_ns`; older ones only `created`.
fn created_ns(fields: &Fields<'_>) -> Option<u64> {
    let exact = fields
        .get(Field::CreatedNs)
        .and_then(|ns| ns.extract::<u64>().ok())
        .filter(|&ns| ns != 0);
    exact.or_else(|| {
        let created = fields.get(Field::Created)?.extract::<f64>().ok()?;
        Some(created_to_ns(created))
    })
}

/// `LogRecord.created` (float seconds) as ns. Whole seconds and fraction
/// apart: `created * 1e9` rounds below a millisecond (`.125` became
/// `.124999936`), and the fraction is floored as CPython floors `msecs`.
fn created_to_ns(created: f64) -> u64 {
    let secs = created.trunc();
    secs as u64 * 1_000_000_000 + ((created - secs) * 1e9) as u64
}

impl Producer {
    /// Write `record` if it is a plain LogRecord; `Ok(false)` (nothing
    /// written) sends it to the Python path.
    pub(crate) fn emit_record<'py>(
        &self,
        py: Python<'py>,
        record: &Bound<'py, PyAny>,
    ) -> PyResult<bool> {
        // Only plain LogRecords whose getMessage nobody replaced: a factory's
        // subclass may compute attributes or format differently.
        if !record.get_type().is(&self.record_type)
            || !self
                .record_type
                .bind(py)
                .getattr(intern!(py, "getMessage"))?
                .is(&self.get_message)
        {
            return Ok(false);
        }
        let Ok(attrs) = record
            .getattr(intern!(py, "__dict__"))?
            .cast_into::<PyDict>()
        else {
            return Ok(false);
        };
        let Some(fields) = self.record_keys.read(&attrs) else {
            return Ok(false);
        };
        let Some(plain) = Plain::of(&fields)? else {
            return Ok(false);
        };
        self.write_plain(py, &plain)?;
        Ok(true)
    }

    /// Format the message as `LogRecord.getMessage` does, without its frame
    /// (`msg = str(self.msg); if self.args: msg = msg % self.args`), and
    /// write the record with its names from the cache.
    fn write_plain(&self, py: Python<'_>, p: &Plain<'_, '_>) -> PyResult<()> {
        let msg = p.msg.str()?;
        let message = msg_args::message(&msg, p.args)?;
        let message = message.as_bytes();
        let (level, line, thread_id, created_ns) = (p.level, p.line, p.thread_id, p.created_ns);
        // try_lock: formatting above may have run Python code (a __str__)
        // that logs from this thread, or let another thread take the GIL
        // while this one held the cache; either way, encode without it.
        let mut cache = match self.names.try_lock() {
            Ok(cache) => Some(cache),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        let Some(names) = cache
            .as_mut()
            .map(|c| c.utf8(&p.names))
            .transpose()?
            .flatten()
        else {
            let owned = names::utf8_uncached(&p.names)?;
            drop(cache);
            let names = owned.each_ref().map(|n| &n[..]);
            let record = log_record(level, line, thread_id, names, message);
            return self.write_record(py, &record, created_ns);
        };
        let record = log_record(level, line, thread_id, names, message);
        match self.try_record(&record, created_ns) {
            Err(WriteError::Full) => {
                // Copy the names out and free the cache before waiting for
                // space: other threads may log meanwhile.
                let names = names.map(<[u8]>::to_vec);
                drop(cache);
                let names = names.each_ref().map(Vec::as_slice);
                let record = log_record(level, line, thread_id, names, message);
                self.write_when_full(py, &record, created_ns)
            }
            result => self.outcome(result),
        }
    }
}
