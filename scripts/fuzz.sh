#!/usr/bin/env bash
# Runs each cargo-fuzz target in turn for MINUTES (default 1) and prints, per target, the
# minutes run, the executions and the crashes found.
#
#   scripts/fuzz.sh [MINUTES] [TARGET...]
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). The seed corpus is
# fuzz/corpus/<target> (read only); what the fuzzer adds goes to fuzz/target/corpus/<target>,
# crashing inputs to fuzz/artifacts/<target>/. After a crash the target starts again for
# the rest of its minutes, so one bug does not hide the next. FUZZ_FLAGS are passed to
# `cargo fuzz build` and `run`: FUZZ_FLAGS=--no-default-features builds only the library's
# targets (conninfo, pgpass), without the whole of pgopt.
set -euo pipefail

minutes="${1:-1}"
shift || true
cd "$(dirname "$0")/../fuzz"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

flags=(${FUZZ_FLAGS:-})
cargo +nightly fuzz build "${flags[@]}" >&2

results=()
for t in "${targets[@]}"; do
    work="target/corpus/$t"
    artifacts="artifacts/$t"
    mkdir -p "$work" "$artifacts"
    budget=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
    # Built again if a source changed since the build above: not counted in its minutes.
    cargo +nightly fuzz build "${flags[@]}" "$t" >&2
    start=$(date +%s)
    execs=0
    before=$(find "$artifacts" -type f | wc -l)
    log="target/fuzz-$t.log"
    : >"$log"
    while :; do
        left=$((budget - ($(date +%s) - start)))
        [ "$left" -gt 0 ] || break
        set +e
        cargo +nightly fuzz run "${flags[@]}" "$t" "$work" "corpus/$t" -- \
            -max_total_time="$left" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
            -max_len=65536 -artifact_prefix="$artifacts/" >>"$log" 2>&1
        rc=$?
        set -e
        n=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
        execs=$((execs + ${n:-0}))
        # The stats of this run are counted: keep the log's later runs apart.
        sed -i 's/stat::number_of_executed_units/counted::number_of_executed_units/' "$log"
        if [ "$rc" -ne 0 ]; then
            echo "$t: crash (exit $rc); input in fuzz/$artifacts, log fuzz/$log" >&2
        fi
    done
    # Distinct crashing inputs (libFuzzer names them by their hash).
    crashes=$(($(find "$artifacts" -type f | wc -l) - before))
    ran=$(awk -v s="$(( $(date +%s) - start ))" 'BEGIN { printf "%.1f", s / 60 }')
    results+=("$(printf '%-14s %8s %14s %8s' "$t" "$ran" "$execs" "$crashes")")
done

printf '%-14s %8s %14s %8s\n' target minutes executions crashes
printf '%s\n' "${results[@]}"
