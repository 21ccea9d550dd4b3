//! Command-line interface (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ringflush_rotation::Clock;

/// One flusher drains a shared-memory ring that many processes log into,
/// formats the records and owns the (rotating) log file.
#[derive(Parser, Debug)]
#[command(name = "ringflush", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// A subcommand; `None` runs the flusher.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The flusher's options, present when no subcommand is given.
    #[command(flatten)]
    pub flusher: Option<FlusherArgs>,
}

/// The subcommands besides running the flusher.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Turn every line on stdin into one record (for shell scripts).
    Pipe(PipeArgs),
    /// Show a segment's capacity, fill, flusher liveness and counters.
    Stat(StatArgs),
    /// List the segments on this machine: log file, size, fill, flusher,
    /// producers.
    Ls(LsArgs),
    /// Remove a segment (refused while a flusher or producers use it, or
    /// it holds unwritten records, unless --force), or with --stale every
    /// segment nobody uses that holds nothing.
    Rm(RmArgs),
    /// Roll the log file of a segment over now (as doRollover() does, and
    /// SIGUSR1 to its flusher); returns once its flusher has.
    Rotate(RotateArgs),
    /// Start a flusher and 8 workers in a temp dir and check nothing is lost.
    Demo(DemoArgs),
    /// Measure end-to-end throughput and producer latency on this machine.
    Bench(BenchArgs),
    /// (internal) a Rust producer process writing numbered records.
    #[command(hide = true)]
    Worker(WorkerArgs),
    /// (internal) print the rollover instant and rotated-file suffix that
    /// --when/--interval/--at-time/--utc give for each --from time.
    #[command(hide = true)]
    Rollover(RolloverArgs),
    /// (internal) print the rotated files of --file that the flusher would
    /// delete to keep --backup-count under --when naming, oldest first.
    #[command(hide = true)]
    Retention(RetentionArgs),
}

/// Arguments of `ringflush retention`.
#[derive(Args, Debug)]
pub struct RetentionArgs {
    /// S, M, H, D, midnight or W0-W6, as the flusher's --when.
    #[arg(long)]
    pub when: String,
    /// Rotated files to keep (0 keeps all).
    #[arg(long)]
    pub backup_count: usize,
    /// The live log file whose rotated siblings are counted.
    #[arg(long)]
    pub file: PathBuf,
    /// Use UTC instead of local time.
    #[arg(long)]
    pub utc: bool,
}

/// Arguments of `ringflush rollover`.
#[derive(Args, Debug)]
pub struct RolloverArgs {
    /// S, M, H, D, midnight or W0-W6, as the flusher's --when.
    #[arg(long)]
    pub when: String,
    /// Units of --when per rollover.
    #[arg(long, default_value_t = 1)]
    pub interval: u32,
    /// Time of day (`HH:MM[:SS]`) of midnight and weekly rollovers.
    #[arg(long)]
    pub at_time: Option<String>,
    /// Use UTC instead of local time.
    #[arg(long)]
    pub utc: bool,
    /// Unix seconds, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub from: Vec<i64>,
}

/// The flusher's options (the command line without a subcommand).
#[derive(Args, Debug, Clone)]
pub struct FlusherArgs {
    /// Shared-memory name, e.g. /applog (/dev/shm/applog).
    #[arg(long, required = true)]
    pub shm: String,
    /// Log file; default `<name>.log` in the current directory.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Python logging format string (see --style); `json` for JSON Lines,
    /// `json:ecs` (Elastic Common Schema) or `json:otel` (OpenTelemetry).
    #[arg(long)]
    pub format: Option<String>,
    /// strftime format for %(asctime)s (Python's default when absent).
    #[arg(long)]
    pub datefmt: Option<String>,
    /// Escape newlines and control characters: one record, one line.
    #[arg(long)]
    pub escape: bool,
    /// Ring size if the flusher creates the segment (e.g. 64M, 1G; power of two).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<u64>,
    /// Per-writer lanes if the flusher creates the segment (0 to 64; default
    /// 64, fewer on a small ring: half its chunks). Each thread writes its
    /// own lane with no atomic read-modify-write, and a stalled writer holds
    /// up only its own records; 0: every writer claims space in the one
    /// shared ring (docs/ARCHITECTURE.md).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=64))]
    pub lanes: Option<u64>,
    /// Permission bits of the segment (octal), e.g. 660 to let a group in.
    #[arg(long, value_parser = parse_mode, default_value = "600")]
    pub mode: u32,
    /// Use a segment owned by another user (refused by default).
    #[arg(long)]
    pub allow_foreign: bool,
    /// Group (name or gid) to give the segment.
    #[arg(long)]
    pub group: Option<String>,
    /// Rotate at S, M, H, D, midnight or W0-W6 (as TimedRotatingFileHandler).
    #[arg(long)]
    pub when: Option<String>,
    /// Rotate every N units of --when.
    #[arg(long, default_value_t = 1)]
    pub interval: u32,
    /// Keep this many rotated files (0 keeps all).
    #[arg(long, default_value_t = 0)]
    pub backup_count: usize,
    /// Use UTC for rotation times and names.
    #[arg(long)]
    pub utc: bool,
    /// Time of day (`HH:MM[:SS]`) for midnight and weekly rotation.
    #[arg(long)]
    pub at_time: Option<String>,
    /// Roll before a record would take the file to this size (e.g. 100M),
    /// as RotatingFileHandler; with --when, whichever comes first.
    #[arg(long, value_parser = parse_size)]
    pub max_bytes: Option<u64>,
    /// Compress rotated files in the background.
    #[arg(long, value_enum, default_value_t = Compress::None)]
    pub compress: Compress,
    /// With --compress: leave the newest N rotated files uncompressed
    /// (logrotate's delaycompress: a log shipper may still be reading the
    /// one just rotated); 0 compresses each at once.
    #[arg(long, default_value_t = 1)]
    pub compress_delay: usize,
    /// Shell command run after each rotation with the rotated file as $1.
    #[arg(long)]
    pub post_rotate: Option<String>,
    /// Leave each rotated file as `<file>.ringflush-pending.<ns>.<rollover>`
    /// for the application to name, compress and prune (the Python
    /// handlers' `namer`, `rotator` and `suffix`); the flusher then does
    /// none of that itself.
    #[arg(long)]
    pub rotated_by_app: bool,
    /// Permission bits (octal) of new log files.
    #[arg(long, value_parser = parse_mode, default_value = "640")]
    pub file_mode: u32,
    /// Give up a record whose live writer has not committed it after this
    /// many seconds (a dead writer's record is given up within a second).
    #[arg(long, default_value_t = 10.0)]
    pub unblock_timeout: f64,
    /// Drain and exit once no producer registered with the segment lives
    /// (for a flusher an application starts itself).
    #[arg(long)]
    pub exit_when_idle: bool,
    /// Start each line this program prints on stderr with the local time
    /// (for a stderr that goes to a file; journald and docker stamp their
    /// own).
    #[arg(long)]
    pub timestamps: bool,
    /// Syntax of --format, as logging.Formatter's style: % (%(name)s), {
    /// (str.format: {name:>10}) or $ (string.Template: $name).
    #[arg(long, default_value = "%", value_parser = ["%", "{", "$"])]
    pub style: String,
    /// Values for format fields that are not LogRecord attributes, for
    /// records whose extra lacks them: a JSON object, as
    /// logging.Formatter's defaults= (e.g. '{"request_id": "-"}').
    #[arg(long)]
    pub defaults: Option<String>,
    /// The service the records come from: json:otel's resource.service.name
    /// (`unknown_service` when absent), json:ecs's service.name.
    #[arg(long)]
    pub service_name: Option<String>,
    // (Format options the formatter work adds go above this line.)
}

/// The clock a `--utc` flag selects for rotation times and names.
pub fn clock(utc: bool) -> Clock {
    if utc {
        Clock::Utc
    } else {
        Clock::Local
    }
}

/// How rotated files are compressed.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compress {
    /// Leave them as they are.
    None,
    /// gzip, in the background, to `<name>.gz`.
    Gzip,
}

/// Arguments of `ringflush pipe`.
#[derive(Args, Debug)]
pub struct PipeArgs {
    /// Shared-memory name, e.g. /applog (created if missing).
    #[arg(long)]
    pub shm: String,
    /// Logger name of the records.
    #[arg(long, default_value = "pipe")]
    pub name: String,
    /// Level name or number.
    #[arg(long, default_value = "INFO")]
    pub level: String,
}

/// Arguments of `ringflush stat`.
#[derive(Args, Debug)]
pub struct StatArgs {
    /// Shared-memory name, e.g. /applog (never created).
    #[arg(long)]
    pub shm: String,
    /// Print JSON instead of text.
    #[arg(long, conflicts_with = "prometheus")]
    pub json: bool,
    /// Print Prometheus text exposition instead (for node_exporter's
    /// textfile collector).
    #[arg(long)]
    pub prometheus: bool,
}

/// Arguments of `ringflush ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Print a JSON array of `stat --json` objects instead.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `ringflush rm`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["shm", "stale"])))]
pub struct RmArgs {
    /// Shared-memory name, e.g. /applog (/dev/shm/applog).
    #[arg(long)]
    pub shm: Option<String>,
    /// Remove it even while used or holding unwritten records.
    #[arg(long, requires = "shm")]
    pub force: bool,
    /// Remove every segment with no flusher, no live producer and nothing
    /// left to write (what `ls` shows with flusher none, 0 producers, 0%).
    #[arg(long)]
    pub stale: bool,
}

/// Arguments of `ringflush rotate`.
#[derive(Args, Debug)]
pub struct RotateArgs {
    /// Shared-memory name, e.g. /applog (/dev/shm/applog).
    #[arg(long)]
    pub shm: String,
    /// Seconds to wait for the flusher to roll over.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
}

/// Arguments of `ringflush demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Seconds the workers log for.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Worker processes.
    #[arg(long, default_value_t = 8)]
    pub workers: u32,
}

/// Arguments of `ringflush bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Producer processes writing as fast as they can.
    #[arg(long, default_value_t = 2)]
    pub producers: u32,
    /// How long they write.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
    /// Lanes of the benchmark's segment (0: the shared ring alone).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=64))]
    pub lanes: u64,
}

/// Arguments of `ringflush worker`.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// Shared-memory name, e.g. /applog (created if missing).
    #[arg(long)]
    pub shm: String,
    /// Worker number (logger `worker.<id>`, messages `worker=<id> seq=<n>`).
    #[arg(long)]
    pub id: u32,
    /// Records to write (0: until --seconds pass).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Write for this many seconds (0: no time limit, only --count; at least
    /// 0.1 with --latency).
    #[arg(long, default_value_t = 0.0)]
    pub seconds: f64,
    /// Pause between records, in microseconds.
    #[arg(long, default_value_t = 0)]
    pub pause_us: u64,
    /// Time every call and print `count p50 p99 p999 max` (ns) instead.
    #[arg(long)]
    pub latency: bool,
    /// Message size in bytes (with --latency).
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
    /// After each record that was logged, store its count (8 bytes, little
    /// endian) at the start of this file: a test that SIGKILLs the worker
    /// learns how many records it saw committed.
    #[arg(long)]
    pub progress: Option<PathBuf>,
    /// Try a record the ring had no room for again (every millisecond,
    /// until --seconds pass) instead of counting it as not logged, as a
    /// caller that must not lose it would: crash tests then read every gap
    /// in a worker's sequence as a committed record lost.
    #[arg(long)]
    pub retry_full: bool,
}

/// `64M`, `1G`, `65536`, `64MiB`: binary units.
///
/// # Errors
/// A message for clap when the number or the unit is not understood, or
/// the size overflows a `u64`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected e.g. 64M"))?;
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(format!("invalid size {s:?}: unit must be K, M or G")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "invalid mode {s:?}: expected octal permission bits like 600 or 660"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_modes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert!(parse_mode("999").is_err());
    }
}

/// Parse `argv` (`argv[0]` the program name). `--help` and `--version`
/// print as clap prints them (exit 0); a usage error prints one line,
/// `ringflush: <what is wrong> (see --help)`, as every other error does,
/// and exits 2. `Err` holds the exit code.
pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Cli, u8> {
    use clap::error::ErrorKind;
    let e = match Cli::try_parse_from(argv) {
        Ok(cli) => return Ok(cli),
        Err(e) => e,
    };
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return Err(if e.use_stderr() { 2 } else { 0 });
    }
    crate::report::stderr(usage_message(&e.render().to_string()));
    Err(2)
}

/// Clap's rendered error as one line: its text without the `error: `
/// prefix, the usage and the "for more information" hint, lines joined.
fn usage_message(rendered: &str) -> String {
    let body = rendered
        .split("\n\nUsage:")
        .next()
        .unwrap_or(rendered)
        .split("\n\nFor more information")
        .next()
        .unwrap_or(rendered);
    let body = body.strip_prefix("error: ").unwrap_or(body);
    let mut line = String::new();
    for part in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(part);
    }
    line + " (see --help)"
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn a_usage_error_is_one_line_without_clap_decoration() {
        let rendered = "error: invalid value '100' for '--lanes <LANES>': 100 is not in 0..=64\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_message(rendered),
            "invalid value '100' for '--lanes <LANES>': 100 is not in 0..=64 (see --help)"
        );
        let rendered = "error: the following required arguments were not provided:\n  --shm <SHM>\n\nUsage: ringflush --shm <SHM> --file <FILE>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_message(rendered),
            "the following required arguments were not provided: --shm <SHM> (see --help)"
        );
    }
}
