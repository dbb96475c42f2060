#!/usr/bin/env bash
# The exported views on a Spark standalone cluster (pyspark's jars: a master and two workers of
# one core each on this machine) against debtlens on the same store, same run.
#
#   benches/spark.sh [--bin PATH] [--runs N] [--worker-memory SIZE] STORE
#
# Spark: the first run of each view (cold) and the median of the other N-1 in one long-lived
# session, as a notebook user sees them. debtlens: the median of N fresh processes
# (`view V --format csv > /dev/null`). Requires pyspark 4 and a JDK (scripts/test installs them).
set -euo pipefail
bin=target/release/debtlens
runs=5
memory=4g
while [ $# -gt 1 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --worker-memory) memory=$2; shift 2 ;;
        *) break ;;
    esac
done
store=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
spark_home=$(python3 -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
port=$((40000 + RANDOM % 10000))
export SPARK_HOME=$spark_home SPARK_LOCAL_IP=127.0.0.1 SPARK_LOG_DIR=$work/logs
"$spark_home/bin/spark-class" org.apache.spark.deploy.master.Master --host 127.0.0.1 --port $port \
    --webui-port $((port + 1)) >/dev/null 2>"$work/master.log" &
sleep 5
for n in 1 2; do
    "$spark_home/bin/spark-class" org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --cores 1 \
        --memory "$memory" --webui-port $((port + 1 + n)) --work-dir "$work/w$n" spark://127.0.0.1:$port \
        >/dev/null 2>"$work/worker$n.log" &
done
sleep 5
"$bin" -q --data "$store" --as-of 2026-10-31 export --dialect spark --tables snapshot --output "$work/views.sql"
views=$(grep -o 'CREATE OR REPLACE TEMPORARY VIEW [a-z_]*' "$work/views.sql" | awk '{print $6}' \
    | grep -v -x -E 'features|incidents|capacity|deployments|backlog')
python3 "$here/spark_times.py" "$work/views.sql" spark://127.0.0.1:$port "$runs" $views >"$work/spark.tsv"
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
echo "| view | debtlens (s) | Spark first (s) | Spark warm (s) | warm/debtlens |"
echo "|---|---:|---:|---:|---:|"
while IFS=$'\t' read -r view first warm; do
    : >"$work/local.t"
    for _ in $(seq "$runs"); do
        t0=$(now); "$bin" -q --data "$store" --as-of 2026-10-31 view "$view" --format csv >/dev/null; t1=$(now)
        echo "$t1 - $t0" | bc >>"$work/local.t"
    done
    l=$(median <"$work/local.t")
    printf '| %s | %.2f | %.2f | %.2f | %.1fx |\n' "$view" "$l" "$first" "$warm" "$(echo "$warm / $l" | bc -l)"
done <"$work/spark.tsv"
