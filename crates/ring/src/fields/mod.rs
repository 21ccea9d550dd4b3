//! A record's structured fields (`extra`), in the two forms producers write:
//!
//! - a JSON object's text, from Python and from the `log` backend, which
//!   render their fields as they write ([`FieldWriter`]);
//! - typed binary entries ([`binary`]), from the tracing layer: integers,
//!   floats and booleans are copied as 8 bytes or 1, strings as they are,
//!   and the flusher renders them ([`expand`]) with the same
//!   [`FieldWriter`], so both forms give the same text and JSON. This is
//!   deferred formatting as in NanoLog (Yang et al., USENIX ATC '18) and
//!   Quill: the caller copies arguments, the background thread formats.
//!   Here the producer still formats the message and `Debug` values (it
//!   gets them as `fmt::Arguments` and `dyn Debug`, which cannot cross a
//!   process boundary), but not the fields' text and JSON.

pub mod binary;
mod expand;
mod render;

pub use binary::{DecodeError, Entries};
pub use expand::expand;
pub use render::FieldWriter;

/// Where a record's fields are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// In the message text as tracing's fmt layer shows them (`login
    /// user_id=42`), and in the JSON.
    InMessage,
    /// In the JSON only; the message text stays bare.
    JsonOnly,
}

/// Whose fields a [`FieldWriter`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// An event's: its `message` field is the record's message, kept out of
    /// the JSON object of fields.
    Event,
    /// A span's: its `message` field is one of its fields.
    Span,
}
