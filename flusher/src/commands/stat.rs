//! `ringflush stat`: what is in a segment, whether its flusher is alive,
//! which producers use it, and its counters; as text, JSON or Prometheus
//! text exposition.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use anyhow::Result;
use ringflush_ring::lane::Owner;
use ringflush_ring::{liveness, registry, Segment, SegmentOptions};
use serde_json::json;

use super::Exit;
use crate::cli::StatArgs;
use crate::report;

/// One look at a segment.
#[derive(Debug)]
pub(super) struct Snapshot {
    /// The log file its last flusher wrote (`None`: no flusher ran yet).
    file: Option<String>,
    capacity: u64,
    /// Bytes of the shared ring (all of `capacity` without lanes).
    shared: u64,
    max_record: u64,
    head: u64,
    tail: u64,
    flusher_pid: u32,
    /// The flusher's PID namespace (0: not known).
    flusher_pid_ns: u64,
    /// It holds the flusher lock: it lives.
    flusher_locked: bool,
    /// It lives and its heartbeat is fresh: it drains.
    flusher_alive: bool,
    /// Age of the flusher's heartbeat; `None` when it is cleared.
    heartbeat_age_ms: Option<u64>,
    write_errno: u32,
    /// `written`, then the loss counters, by name.
    counters: Vec<(&'static str, u64)>,
    /// Registered producers, whether each lives, and their PID namespaces.
    producers: Vec<registry::Producer>,
    /// This process's PID namespace.
    our_pid_ns: u64,
    /// Producers that found the registry full.
    registry_overflow: u64,
    /// The segment's lanes, if it has any.
    lanes: Option<LanesView>,
}

/// What `stat` shows of a segment's lanes.
#[derive(Debug)]
struct LanesView {
    count: usize,
    chunk_size: u64,
    chunk_count: usize,
    chunks_held: usize,
    /// Records written out of time order (`Counters::late`).
    late: u64,
    /// The lanes that have a writer, or wait to be recycled.
    taken: Vec<LaneView>,
}

#[derive(Debug)]
struct LaneView {
    lane: usize,
    registration: u32,
    thread_id: u64,
    released: bool,
    /// Bytes published and not yet written.
    pending: u64,
}

impl LanesView {
    fn take(seg: &Segment) -> Option<Self> {
        let lanes = seg.lanes()?;
        let taken = (0..lanes.count())
            .filter_map(|i| {
                let (registration, released) = match lanes.owner(i) {
                    Owner::Free => return None,
                    Owner::Owned { registration } => (registration, false),
                    Owner::Released { registration } => (registration, true),
                };
                Some(LaneView {
                    lane: i,
                    registration,
                    thread_id: lanes.thread_id(i),
                    released,
                    pending: lanes.pending(i),
                })
            })
            .collect();
        Some(Self {
            count: lanes.count(),
            chunk_size: lanes.chunk_size(),
            chunk_count: lanes.chunk_count(),
            chunks_held: lanes.chunks_held(),
            late: seg.header().counters.late.load(Ordering::Relaxed),
            taken,
        })
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "count": self.count,
            "chunk_size": self.chunk_size,
            "chunks": self.chunk_count,
            "chunks_held": self.chunks_held,
            "late": self.late,
            "taken": self.taken.iter().map(|l| json!({"lane": l.lane, "registration": l.registration, "thread_id": l.thread_id, "released": l.released, "pending": l.pending})).collect::<Vec<_>>(),
        })
    }

    fn text(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "lanes     {} of {} taken, {} of {} chunks of {} bytes held, {} late records",
            self.taken.len(),
            self.count,
            self.chunks_held,
            self.chunk_count,
            self.chunk_size,
            self.late,
        );
        for l in &self.taken {
            let state = if l.released { ", released" } else { "" };
            let _ = writeln!(
                out,
                "  lane {:<3} thread {} (registration {}){state}: {} bytes pending",
                l.lane, l.thread_id, l.registration, l.pending
            );
        }
    }
}

impl Snapshot {
    pub(super) fn take(seg: &Segment) -> Self {
        let h = seg.header();
        let pid = h.flusher.pid.load(Ordering::Relaxed);
        let heartbeat = h.flusher.heartbeat_ns.load(Ordering::Relaxed);
        let age_ms = ringflush_ring::now_ns().saturating_sub(heartbeat) / 1_000_000;
        let locked = seg.flusher_alive();
        let c = &h.counters;
        let mut counters = vec![("written", c.written.load(Ordering::Relaxed))];
        counters.extend(c.losses().map(|(k, n)| (k, n.load(Ordering::Relaxed))));
        Snapshot {
            file: h.log_file.load().into_iter().next(),
            capacity: seg.capacity(),
            shared: seg.geometry().shared,
            max_record: h.identity.max_record.load(Ordering::Relaxed),
            head: h.head.0.load(Ordering::Acquire),
            tail: h.tail.0.load(Ordering::Acquire),
            flusher_pid: pid,
            flusher_pid_ns: h.flusher.pid_namespace.load(Ordering::Relaxed),
            flusher_locked: locked,
            flusher_alive: seg.flusher_running(),
            heartbeat_age_ms: (heartbeat != 0).then_some(age_ms),
            write_errno: h.flusher.write_errno.load(Ordering::Relaxed),
            counters,
            producers: registry::registered(h, seg.fd()),
            our_pid_ns: liveness::pid_namespace(),
            registry_overflow: h.producers.overflow.load(Ordering::Relaxed),
            lanes: LanesView::take(seg),
        }
    }

    /// `pid N`, with its namespace when it is not this process's.
    fn pid(&self, pid: u32, ns: u64) -> String {
        if ns == 0 || ns == self.our_pid_ns {
            format!("pid {pid}")
        } else {
            format!("pid {pid} in pid namespace {ns}")
        }
    }

    /// The log file its last flusher wrote.
    pub(super) fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    pub(super) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Producers registered and alive.
    pub(super) fn live_producers(&self) -> usize {
        self.producers.iter().filter(|p| p.alive).count()
    }

    /// The flusher in a few words: `pid 12`, `pid 12 (paused?)`, `none`.
    pub(super) fn flusher_state(&self) -> String {
        match (self.flusher_locked, self.flusher_alive) {
            (true, true) => format!("pid {}", self.flusher_pid),
            (true, false) => format!("pid {} (paused?)", self.flusher_pid),
            (false, _) => "none".into(),
        }
    }

    /// Bytes waiting to be written: in the shared ring and in the lanes.
    pub(super) fn used(&self) -> u64 {
        let lanes = self.lanes.as_ref();
        let pending = lanes.map_or(0, |l| l.taken.iter().map(|l| l.pending).sum());
        self.tail.saturating_sub(self.head).min(self.shared) + pending.min(self.capacity)
    }
}

/// Print the report on the existing segment `--shm`: text, one JSON object
/// on a line with `--json`, or Prometheus text exposition with
/// `--prometheus`. The segment is not created and its pages are not
/// faulted in.
///
/// # Errors
/// When the segment cannot be opened (see `Segment::open`), or stdout
/// cannot be written.
pub fn run(args: &StatArgs) -> Result<Exit> {
    let seg = Segment::open(&args.shm, &SegmentOptions::inspect())?;
    let snap = Snapshot::take(&seg);
    let text = if args.json {
        json(&args.shm, &snap) + "\n"
    } else if args.prometheus {
        prometheus(&args.shm, &snap)
    } else {
        text(&args.shm, &snap)
    };
    report::stdout(&text)?;
    Ok(Exit::Ok)
}

pub(super) fn json(shm: &str, s: &Snapshot) -> String {
    json_value(shm, s).to_string()
}

pub(super) fn json_value(shm: &str, s: &Snapshot) -> serde_json::Value {
    let mut v = json!({
        "shm": shm,
        "file": s.file,
        "capacity": s.capacity,
        "max_record": s.max_record,
        "used": s.used(),
        "fill": s.used() as f64 / s.capacity as f64,
        "head": s.head,
        "tail": s.tail,
        "flusher": {"pid": s.flusher_pid, "pid_namespace": s.flusher_pid_ns, "alive": s.flusher_alive, "locked": s.flusher_locked, "heartbeat_age_ms": s.heartbeat_age_ms, "write_errno": s.write_errno},
        "pid_namespace": s.our_pid_ns,
        "producers": s.producers.iter().map(|p| json!({"pid": p.who.pid, "pid_namespace": p.pid_namespace, "alive": p.alive})).collect::<Vec<_>>(),
        "registry_overflow": s.registry_overflow,
    });
    for (k, n) in &s.counters {
        v[*k] = json!(n);
    }
    if let Some(lanes) = &s.lanes {
        v["lanes"] = lanes.json();
    }
    v
}

fn text(shm: &str, s: &Snapshot) -> String {
    let used = s.used();
    let who = s.pid(s.flusher_pid, s.flusher_pid_ns);
    let flusher = match (s.flusher_pid, s.flusher_locked, s.flusher_alive) {
        (0, false, _) => "never ran".to_string(),
        (_, true, true) => {
            let age = s.heartbeat_age_ms.unwrap_or(0);
            format!("{who}, alive (heartbeat {age} ms ago)")
        }
        (_, true, false) => {
            format!("{who}, alive but not draining (no heartbeat for 3 s: paused?)")
        }
        (_, false, _) => format!("{who}, not running (exited or died)"),
    };
    let file = s
        .file
        .as_deref()
        .unwrap_or("not known yet (no flusher ran)");
    let mut out = format!(
        "segment   {shm}\nfile      {file}\ncapacity  {} bytes\nused      {used} bytes ({:.1}%)\nhead      {}\ntail      {}\nflusher   {flusher}\n",
        s.capacity,
        100.0 * used as f64 / s.capacity as f64,
        s.head,
        s.tail,
    );
    if s.write_errno != 0 {
        let e = std::io::Error::from_raw_os_error(s.write_errno as i32);
        let _ = writeln!(out, "write     failing: {e}");
    }
    let producers: Vec<String> = s
        .producers
        .iter()
        .map(|p| {
            let who = s.pid(p.who.pid, p.pid_namespace);
            format!("{who}{}", if p.alive { "" } else { " (dead)" })
        })
        .collect();
    let more = if s.registry_overflow > 0 {
        " and unregistered ones (registry full)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "producers {}{more}",
        if producers.is_empty() {
            "none".into()
        } else {
            producers.join(", ")
        }
    );
    if let Some(lanes) = &s.lanes {
        lanes.text(&mut out);
    }
    for (k, n) in &s.counters {
        let _ = writeln!(out, "{k:<13} {n}");
    }
    out
}

/// Prometheus metric name, type and help for each counter.
fn metric(counter: &str) -> (&'static str, &'static str) {
    match counter {
        "written" => (
            "ringflush_records_written_total",
            "Records the flusher has written to the log file.",
        ),
        "dropped" => (
            "ringflush_records_dropped_total",
            "Records producers dropped because the ring stayed full.",
        ),
        "truncated" => (
            "ringflush_records_truncated_total",
            "Records whose message was cut to the maximum record size.",
        ),
        "abandoned" => (
            "ringflush_records_abandoned_total",
            "Records given up because their writer died or stalled.",
        ),
        "corrupt" => (
            "ringflush_corrupt_regions_total",
            "Ring regions skipped because they failed validation.",
        ),
        "late_commits" => (
            "ringflush_late_commits_total",
            "Commits refused because the record was already abandoned.",
        ),
        "repairs" => (
            "ringflush_repairs_total",
            "Repairs of the segment: control words reset or size restored.",
        ),
        "lost_bytes" => ("ringflush_lost_bytes_total", "Ring bytes lost in repairs."),
        "at_risk" => (
            "ringflush_records_at_risk_total",
            "Records written as the log file was moved away.",
        ),
        _ => ("ringflush_other_total", "Other events."),
    }
}

fn prometheus(shm: &str, s: &Snapshot) -> String {
    let label = format!(
        "{{shm=\"{}\"}}",
        shm.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let mut out = String::new();
    let mut put = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{label} {value}\n"
        );
    };
    for (k, n) in &s.counters {
        let (name, help) = metric(k);
        put(name, "counter", help, *n as f64);
    }
    let used = s.used();
    put(
        "ringflush_ring_capacity_bytes",
        "gauge",
        "Bytes in the ring.",
        s.capacity as f64,
    );
    put(
        "ringflush_ring_used_bytes",
        "gauge",
        "Bytes claimed and not yet released.",
        used as f64,
    );
    put(
        "ringflush_ring_fill_ratio",
        "gauge",
        "Used bytes over capacity.",
        used as f64 / s.capacity as f64,
    );
    put(
        "ringflush_flusher_alive",
        "gauge",
        "1 while a flusher drains the segment.",
        f64::from(u8::from(s.flusher_alive)),
    );
    put(
        "ringflush_flusher_write_failing",
        "gauge",
        "1 while writing (or opening) the log file fails.",
        f64::from(u8::from(s.write_errno != 0)),
    );
    put(
        "ringflush_flusher_write_errno",
        "gauge",
        "The last write error's errno, 0 when writing works.",
        s.write_errno as f64,
    );
    let live = s.producers.iter().filter(|p| p.alive).count();
    put(
        "ringflush_producers",
        "gauge",
        "Live processes registered as producers.",
        live as f64,
    );
    out
}
