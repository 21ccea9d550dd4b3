#!/usr/bin/env bash
# Mutation testing of the files where a bug loses or repeats records (see
# docs/TESTING.md). Too slow for CI: run it by hand after changing these
# files, then kill or list every surviving mutant.
#
#   cargo install cargo-mutants --locked
#   scripts/mutants.sh [ring|lanes|rotation|flusher|all]   # default all
#
# Each group runs in two passes. The first is cargo-mutants with the
# mutated crate's own tests (about a second each): a mutant that makes them
# run past --timeout hangs them (a ring that never drains), which counts as
# caught. The second, scripts/mutants_slow.py, runs only the survivors
# against the slower suites of the flusher package (multi-process, crash
# and hostile-input tests), a minute or more per mutant.
# Results: mutants.out-<group>/mutants.out/{caught,missed,timeout,unviable,slow}.txt
set -euo pipefail
cd "$(dirname "$0")/.."
export RINGFLUSH_CHAOS_SECONDS=3
group=${1:-all}

fast() {
    local name=$1; shift
    # Exits 2 when mutants survive: the second pass goes on.
    cargo mutants --no-shuffle -j 1 --output "mutants.out-$name" "$@" || true
}
slow() {
    local name=$1; shift
    scripts/mutants_slow.py "mutants.out-$name/mutants.out" "$@"
}

if [[ $group == ring || $group == all ]]; then
    fast ring --workspace --file crates/ring/src/ring.rs --file crates/ring/src/codec.rs \
        --timeout 5
    slow ring -p ringflush --test it -- fuzz_ring:: producer_api:: faults:: hostile::
fi
if [[ $group == lanes || $group == all ]]; then
    fast lanes --workspace --file crates/ring/src/lane.rs --file producer/src/lanes.rs \
        --exclude-re 'tests::' --timeout 10
    slow lanes -p ringflush --test it -- lanes:: thread_lanes:: producer_api:: multiprocess:: liveness::
fi
if [[ $group == rotation || $group == all ]]; then
    fast rotation --workspace --file crates/rotation/src/timed.rs --timeout 20
    slow rotation -p ringflush --test it -- python_rotation:: rotation:: options::
fi
if [[ $group == flusher || $group == all ]]; then
    fast flusher --file flusher/src/drain/recovery.rs --file flusher/src/output/mod.rs \
        --file flusher/src/output/rules.rs --file flusher/src/drain/batch.rs \
        --file flusher/src/drain/stuck.rs --timeout 20 -- --lib
    slow flusher -p ringflush --test it -- faults:: rotation:: flusher:: options:: \
        errors:: deployment::
fi
