#!/usr/bin/env bash
# Instructions and locked (bus-locking) instructions per Producer::log call
# of a 100 B message, by callgrind: (a run of 2N calls - a run of N) / N, so
# set-up cancels out. Deterministic on a noisy VM.
#
#   benches/tools/icount.sh            # the default segment (lanes)
#   LANES=0 benches/tools/icount.sh    # the shared ring alone
#
# "locked" is callgrind's global bus events (--collect-bus=yes): each
# lock-prefixed instruction (and xchg with memory) executed counts one. A
# thread that owns a lane must show 0.
set -eu
co=$(cd "$(dirname "$0")/../.." && pwd)
lanes=${LANES:-default}
work=$(mktemp -d /tmp/icount.XXXXXX)
trap 'rm -rf "$work"; rm -f /dev/shm/icount-$$' EXIT
mkdir -p "$work/src"
cat >"$work/Cargo.toml" <<TOML
[package]
name = "icount"
version = "0.1.0"
edition = "2021"
[dependencies]
ringflush-producer = { path = "$co/producer", default-features = false }
[profile.release]
debug = 1
[workspace]
TOML
cat >"$work/src/main.rs" <<'RS'
fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().unwrap().parse().unwrap();
    let name = args.next().unwrap();
    let lanes = args.next().unwrap();
    let mut b = ringflush_producer::Producer::builder(&name).capacity(256 << 20);
    if let Ok(l) = lanes.parse() {
        b = b.lanes(l);
    }
    let p = b.open().expect("open");
    // Opaque to the optimiser, as a caller's logger and message are: a
    // literal would be constant-folded into the copy.
    let msg = std::hint::black_box("x".repeat(100));
    let logger = std::hint::black_box(String::from("app.db"));
    // Warm up: first touch of pages, the thread's lane and caches.
    for _ in 0..1000 {
        let _ = p.log(ringflush_producer::level::INFO, &logger, &msg);
    }
    for _ in 0..n {
        let _ = p.log(ringflush_producer::level::INFO, &logger, &msg);
    }
}
RS
(cd "$work" && CARGO_TARGET_DIR="$co/target/icount" cargo build --release -q 2>"$work/build.err") ||
  { echo "icount: build failed: $(tail -3 "$work/build.err")"; exit 1; }
exe="$co/target/icount/release/icount"
# Prints "instructions bus-events" of a run of $1 calls.
run() {
  rm -f /dev/shm/icount-$$
  valgrind --tool=callgrind --collect-bus=yes --callgrind-out-file="$work/cg.$1" \
    "$exe" "$1" /icount-$$ "$lanes" >/dev/null 2>"$work/vg.$1" ||
    { echo "icount: valgrind failed: $(tail -2 "$work/vg.$1")" >&2; exit 1; }
  grep -E "^events:" "$work/cg.$1" | head -1 >"$work/events.$1"
  grep -E "^summary:|^totals:" "$work/cg.$1" | head -1 | awk '{print $2, $3}'
}
read -r ia ba <<<"$(run 50000)"
read -r ib bb <<<"$(run 100000)"
echo "icount: $(( (ib - ia) / 50000 )) instructions, $(( (${bb:-0} - ${ba:-0}) / 50000 )) locked per Producer::log call (lanes: $lanes; 100 B message; callgrind, 100k-50k calls)"
