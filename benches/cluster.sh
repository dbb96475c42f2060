#!/usr/bin/env bash
# Every view on the local engine and on a Ballista cluster of one scheduler and two executors
# (all on this machine, each its own `debtlens cluster` process), same binary, same run:
# medians of RUNS alternating fresh-process runs, and a check that both give the same bytes.
#
#   benches/cluster.sh [--bin PATH] [--runs N] [--slots N] STORE
set -euo pipefail
bin=target/release/debtlens
runs=3
slots=1
while [ $# -gt 1 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --slots) slots=$2; shift 2 ;;
        *) break ;;
    esac
done
store=$1
port=$((40000 + RANDOM % 10000))
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
"$bin" -q cluster scheduler --bind 127.0.0.1:$port 2>"$work/scheduler.log" &
sleep 1
for n in 1 2; do
    "$bin" -q cluster executor --scheduler df://127.0.0.1:$port --bind 127.0.0.1:$((port + 2 * n)) \
        --slots "$slots" --work-dir "$work/ex$n" 2>"$work/ex$n.log" &
done
sleep 3
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
echo "| view | local (s) | cluster (s) | cluster/local | same bytes |"
echo "|---|---:|---:|---:|---|"
for view in $("$bin" -q views --format csv | tail -n +2 | cut -d, -f1); do
    : >"$work/local.t"; : >"$work/cluster.t"
    for _ in $(seq "$runs"); do
        t0=$(now); "$bin" -q --data "$store" --as-of 2026-10-31 view "$view" --format csv >"$work/local.csv"; t1=$(now)
        echo "$t1 - $t0" | bc >>"$work/local.t"
        t0=$(now); "$bin" -q --cluster df://127.0.0.1:$port --data "$store" --as-of 2026-10-31 view "$view" \
            --format csv >"$work/cluster.csv"; t1=$(now)
        echo "$t1 - $t0" | bc >>"$work/cluster.t"
    done
    l=$(median <"$work/local.t"); c=$(median <"$work/cluster.t")
    same=$(cmp -s "$work/local.csv" "$work/cluster.csv" && echo yes || echo NO)
    printf '| %s | %.2f | %.2f | %.2fx | %s |\n' "$view" "$l" "$c" "$(echo "$c / $l" | bc -l)" "$same"
done
