#!/usr/bin/env bash
# Mutation testing of the files where a bug loses or repeats records (see
# docs/TESTING.md). Too slow for CI (hours on 2 cores): run it by hand after
# changing these files, then kill or list every surviving mutant.
#
#   cargo install cargo-mutants --locked
#   scripts/mutants.sh [ring|rotation|flusher|all]   # default all
#
# Results: mutants.out-<group>/{caught,missed,timeout,unviable}.txt
set -euo pipefail
cd "$(dirname "$0")/.."
export RINGFLUSH_CHAOS_SECONDS=3
group=${1:-all}

run() {
    local name=$1; shift
    cargo mutants --no-shuffle -j 1 --timeout 60 \
        --output "mutants.out-$name" "$@"
}

if [[ $group == ring || $group == all ]]; then
    # The protocol and the codec: the ring crate's own tests, the fuzzer,
    # and the multi-process tests that kill producers and the flusher.
    run ring --workspace \
        --file crates/ring/src/ring.rs --file crates/ring/src/codec.rs \
        --test-package ringflush-ring,ringflush -- \
        --lib --test ring --test fuzz_ring --test faults --test flusher --test producer_api
fi
if [[ $group == rotation || $group == all ]]; then
    # CPython's schedule and names: unit tests and the differential test.
    run rotation --workspace --file crates/rotation/src/timed.rs \
        --test-package ringflush-rotation,ringflush -- \
        --lib --test python_rotation --test rotation --test options
fi
if [[ $group == flusher || $group == all ]]; then
    # The flusher: crash recovery, the file and its rotation, the batch and
    # the give-up rule.
    run flusher \
        --file flusher/src/recovery.rs --file flusher/src/output.rs \
        --file flusher/src/batch.rs --file flusher/src/stuck.rs \
        --test-package ringflush -- \
        --lib --test faults --test rotation --test flusher --test options --test errors
fi
