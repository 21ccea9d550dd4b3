//! One way to tell the operator something (ripgrep's `messages.rs` is the
//! model). Every message is printed once on stderr as `ringflush: <text>`;
//! [`Reporter::say`] decides by its [`Audience`] whether it also goes into
//! the log file, where whoever reads the log sees a loss at the place it
//! happened.

use std::fmt::Display;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether stderr lines start with the local time (`--timestamps`).
static TIMESTAMPS: AtomicBool = AtomicBool::new(false);

/// Start every stderr line with the local time from now on: for a stderr
/// that goes to a file (journald and docker stamp lines themselves).
pub fn timestamp_stderr(on: bool) {
    TIMESTAMPS.store(on, Ordering::Relaxed);
}

/// Print one line on stderr, stamped when asked.
fn line(text: &str) {
    if TIMESTAMPS.load(Ordering::Relaxed) {
        let now = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%.3f%:z");
        eprintln!("{now} {text}");
    } else {
        eprintln!("{text}");
    }
}

/// Who must hear a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The operator, on stderr: the flusher's own state (started, stopped,
    /// a failing write, a record it gave up, which the counters also show).
    Operator,
    /// The operator and the log's readers: the records lost since the last
    /// report, as counted in the segment.
    Log,
}

/// Print `message` once on stderr, prefixed `ringflush: `. For threads and
/// commands with no log to write to.
pub fn stderr(message: impl Display) {
    line(&format!("ringflush: {message}"));
}

/// Print `text` on stdout. A reader that went away (`stat | head`) is not
/// an error: the command has done its job.
///
/// # Errors
/// When writing fails otherwise.
pub fn stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    }
}

/// Print an error and its causes on one line (`what: why: os error`).
pub fn error(e: &anyhow::Error) {
    stderr(format_args!("{e:#}"));
}

/// An error and its causes on one line (`what: why: os error`), each once.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text += &format!(": {c}");
        cause = c.source();
    }
    text
}

/// The flusher's messages, with the lines still to be written into the log.
#[derive(Debug, Default)]
pub struct Reporter {
    for_log: Vec<String>,
}

impl Reporter {
    /// Tell `audience` about `message`.
    pub fn say(&mut self, audience: Audience, message: impl Display) {
        let text = format!("ringflush: {message}");
        line(&text);
        if audience == Audience::Log {
            self.for_log.push(text);
        }
    }

    /// The lines for the log said since the last call, oldest first.
    pub fn take_for_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.for_log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_log_messages_are_kept_for_the_log() {
        let mut r = Reporter::default();
        r.say(Audience::Operator, "started");
        r.say(Audience::Log, format_args!("{} records dropped", 3));
        assert_eq!(r.take_for_log(), ["ringflush: 3 records dropped"]);
        assert!(r.take_for_log().is_empty());
    }
}
