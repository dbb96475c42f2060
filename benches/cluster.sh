#!/usr/bin/env bash
# Every view on the local engine and on a Ballista cluster of one scheduler and two executors
# (all on this machine, each its own `debtlens cluster` process), same binary, same run:
# medians of RUNS alternating fresh-process runs, and a check that both give the same bytes.
#
#   benches/cluster.sh [--bin PATH] [--runs N] [--slots N] [--memory-limit SIZE] [--timeout S] STORE
#
# Executors get --memory-limit (default 4G each: without a limit an executor's sort does not
# spill, and at 10M features shipped_features' took 24 GB until the kernel killed it). A run
# longer than --timeout seconds (default 900) counts as failed. --skip REGEX leaves out the views
# whose names match.
set -euo pipefail
bin=target/release/debtlens
runs=3
slots=1
memory=4G
timeout=900
skip='^$'
while [ $# -gt 1 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --slots) slots=$2; shift 2 ;;
        --memory-limit) memory=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --skip) skip=$2; shift 2 ;;
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
        --slots "$slots" --memory-limit "$memory" --work-dir "$work/ex$n" 2>"$work/ex$n.log" &
done
sleep 3
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
echo "| view | local (s) | cluster (s) | cluster/local | same bytes |"
echo "|---|---:|---:|---:|---|"
for view in $("$bin" -q views --format csv | tail -n +2 | cut -d, -f1 | grep -v -E "$skip"); do
    : >"$work/local.t"; : >"$work/cluster.t"
    for _ in $(seq "$runs"); do
        t0=$(now); "$bin" -q --data "$store" --as-of 2026-10-31 view "$view" --format csv >"$work/local.csv"; t1=$(now)
        echo "$t1 - $t0" | bc >>"$work/local.t"
        t0=$(now)
        if timeout "$timeout" "$bin" -q --cluster df://127.0.0.1:$port --data "$store" --as-of 2026-10-31 \
            view "$view" --format csv >"$work/cluster.csv" 2>"$work/cluster.err"; then
            t1=$(now); echo "$t1 - $t0" | bc >>"$work/cluster.t"
        else
            echo "failed" >>"$work/cluster.t"
        fi
    done
    l=$(median <"$work/local.t")
    if grep -q failed "$work/cluster.t"; then
        printf '| %s | %.2f | failed: %s | | |\n' "$view" "$l" "$(head -c 200 "$work/cluster.err" | tr '\n|' '  ')"
        continue
    fi
    c=$(median <"$work/cluster.t")
    same=$(cmp -s "$work/local.csv" "$work/cluster.csv" && echo yes || echo NO)
    printf '| %s | %.2f | %.2f | %.2fx | %s |\n' "$view" "$l" "$c" "$(echo "$c / $l" | bc -l)" "$same"
done
