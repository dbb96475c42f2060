#!/usr/bin/env bash
# The roadmap forecast's speed target (issue 19): `debtlens plan` over 500 backlog items x
# 10,000 trials on one core, whole command, each run a fresh process.
#
#   benches/plan.sh [--bin PATH] [--items N] [--trials N] [--runs N] [--work DIR]
#
# Generates a store of 20,000 features with a backlog of N items (`debtlens sample
# --backlog N`), then times `debtlens -q --threads 1 plan` (CSV to a file) N runs and prints
# each time, their median, and the part that is opening the store and fitting (`--trials 1`).
# Times come from the clock around each process (date +%s.%N), so nothing else is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/debtlens
items=500
trials=10000
runs=5
work=target/plan-bench
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --items) items=$2; shift 2 ;;
        --trials) trials=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ ! -x "$bin" ]; then
    echo "building $bin (cargo build --release)..." >&2
    cargo build --release --locked >&2
fi
mkdir -p "$work"
store="$work/store-$items"
if [ ! -d "$store" ] || [ "$bin" -nt "$store" ]; then
    rm -rf "$store"
    "$bin" -q sample --out "$store" --features 20000 --incidents 100 --backlog "$items" >&2
fi

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
time_one() {
    local start end
    start=$(date +%s.%N)
    "$bin" -q --threads 1 --data "$store" plan --trials "$1" --format csv --output "$work/plan.csv"
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }'
}

echo "plan: $items items, $trials trials, --threads 1, $bin ($(git rev-parse --short HEAD))"
full=()
fit=()
for _ in $(seq "$runs"); do
    full+=("$(time_one "$trials")")
    fit+=("$(time_one 1)")
done
printf 'whole command (s): %s\n' "${full[*]}"
printf 'median: %.3f s; of which opening the store and fitting (--trials 1, median): %.3f s\n' \
    "$(printf '%s\n' "${full[@]}" | median)" "$(printf '%s\n' "${fit[@]}" | median)"
echo "rows: $(($(wc -l < "$work/plan.csv") - 1)) items in $work/plan.csv (last run: --trials 1)"
