#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time, one at a time, and prints per target:
# runs, exec/s, corpus size and crashes. Exit status 1 if any target crashed, hung or ran out of
# memory (libFuzzer stops a target at its first failure; the input is in fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]        (default 60)
#   FUZZ_TARGETS="labels config_file" scripts/fuzz.sh 30
#
# Seeds come from fuzz/corpus/<target>/ (committed); what a run discovers goes to
# fuzz/work/<target>/ (ignored by git), so runs build on each other without touching the seeds.
# To keep a crash fixed: fix it, copy the artifact to fuzz/corpus/<target>/crash-<hash>, and
# `cargo test --test suite fuzz_regressions::` replays it from then on.
set -euo pipefail

seconds=${1:-60}
targets=${FUZZ_TARGETS:-marathon_apps labels event_stream config_file http_connection http_connection_native}
cd "$(dirname "$0")/../fuzz"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

# Nightly when installed; otherwise stable with RUSTC_BOOTSTRAP (cargo-fuzz passes -Z flags).
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    cargo=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo fuzz)
fi
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 2; }

# Release build with debug assertions (overflow checks) and AddressSanitizer.
flags=(-O -a)
"${cargo[@]}" build "${flags[@]}"

mkdir -p logs
failed=0
rows=()
for target in $targets; do
    # The native HTTP/1 path is fed the same seeds as hyper's (tests/hostile/fuzz_regressions.rs
    # replays that corpus through both); a crash it finds is kept there too.
    seeds="corpus/$target"
    [ "$target" = http_connection_native ] && seeds=corpus/http_connection
    mkdir -p "work/$target" "artifacts/$target" "$seeds"
    log="logs/$target.log"
    before=$(ls "artifacts/$target" | wc -l)
    echo "== $target: ${seconds}s" >&2
    status=0
    "${cargo[@]}" run "${flags[@]}" "$target" "work/$target" "$seeds" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    # A target stopped by a failure prints no final stats: `|| true`, or pipefail would end
    # the whole run here.
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    # The last status line ("#N DONE cov: .. corp: 123/45Kb ...") holds the corpus size.
    corpus=$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2 || true)
    # Seconds actually fuzzed: less than asked when the target stopped at a failure.
    ran=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o '[0-9]* second' | cut -d' ' -f1 | tail -1 || true)
    crashes=$(( $(ls "artifacts/$target" | wc -l) - before ))
    if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        echo "!! $target failed (exit $status); see fuzz/$log and fuzz/artifacts/$target/" >&2
        grep -m3 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" >&2 || true
    fi
    rows+=("$(printf '%-16s %8s %12s %8s %12s %8s' "$target" "${ran:-stopped}" "${runs:-?}" "${rate:-?}" "${corpus:-?}" "$crashes")")
done

printf '%-16s %8s %12s %8s %12s %8s\n' target seconds runs exec/s corpus crashes
printf '%s\n' "${rows[@]}"
exit "$failed"
