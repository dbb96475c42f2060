#!/usr/bin/env bash
# Views over a store built the way a team builds one: a little every day (issue 22).
#
#   benches/daily.sh [--days N] [--rows-per-day N] [--runs N] [--bin PATH] [--work DIR]
#
# 1. Generates a sample store (--days x --rows-per-day features, 1.5x as many incidents) and
#    exports its features as --days CSV files of --rows-per-day rows each, in shipping order.
# 2. Builds four stores with the same rows: `once` (every table ingested in one go), `daily`
#    (features ingested one day's file at a time, --no-auto-optimize: one small file a day),
#    `optimized` (a copy of `daily` after `debtlens optimize`) and `auto` (the daily ingests with
#    ingest's defaults, which compact the table whenever it reaches 50 files).
# 3. Times every view N times on each store (default 5), each a fresh process writing CSV to
#    /dev/null, checks that the stores give the same bytes, and prints each view's median on
#    `once` and the ratios daily/once, optimized/once and auto/once.
# Default: 200 days of 1,000 features (the issue's store).
set -euo pipefail
cd "$(dirname "$0")/.."

days=200
per_day=1000
runs=5
bin=target/release/debtlens
work=target/daily
while [ $# -gt 0 ]; do
    case "$1" in
        --days) days=$2; shift 2 ;;
        --rows-per-day) per_day=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$bin" ] || { echo "no $bin: cargo build --release" >&2; exit 2; }
features=$((days * per_day))
incidents=$((features * 3 / 2))
rm -rf "$work"
mkdir -p "$work/csv"
"$bin" -q sample --out "$work/source" --features "$features" --incidents "$incidents" --seed 7

export_csv() { "$bin" -q --data "$work/source" query "$1" --output "$2"; }
for table in incidents capacity backlog; do
    export_csv "SELECT * FROM $table" "$work/csv/$table.csv"
done
export_csv "SELECT * FROM features" "$work/csv/features.csv"
# One file per day: the features in shipping order (unshipped last), --rows-per-day each.
python3 - "$work/csv/features.csv" "$work/csv" "$per_day" <<'PY'
import csv, sys
src, out, per_day = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src, newline='') as f:
    rows = list(csv.reader(f))
header, rows = rows[0], rows[1:]
shipped = header.index('shipped_at')
rows.sort(key=lambda r: (r[shipped] == '', r[shipped]))
for day, start in enumerate(range(0, len(rows), per_day)):
    with open(f'{out}/day-{day:04d}.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows[start:start + per_day])
PY

for store in once daily auto; do
    "$bin" -q init "$work/$store"
    for table in incidents capacity backlog; do
        "$bin" -q --data "$work/$store" ingest "$table" "$work/csv/$table.csv" > /dev/null
    done
done
"$bin" -q --data "$work/once" ingest features "$work/csv/features.csv" > /dev/null
start=$(date +%s.%N)
for day in "$work"/csv/day-*.csv; do
    "$bin" -q --data "$work/daily" ingest features "$day" --no-auto-optimize > /dev/null
done
ingest_s=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
for day in "$work"/csv/day-*.csv; do
    "$bin" -q --data "$work/auto" ingest features "$day" > /dev/null
done
auto_s=$(echo "$(date +%s.%N) - $start" | bc)
files=$(find "$work/daily/features" -maxdepth 1 -name '*.parquet' | wc -l)
cp -r "$work/daily" "$work/optimized"
start=$(date +%s.%N)
"$bin" --data "$work/optimized" optimize features
optimize_s=$(echo "$(date +%s.%N) - $start" | bc)
auto_files=$(find "$work/auto/features" -maxdepth 1 -name '*.parquet' | wc -l)
echo "daily: $days ingests of $per_day features in ${ingest_s}s, $files files; optimize ${optimize_s}s" >&2
echo "auto: the same ingests with auto-optimize in ${auto_s}s ($auto_files files on disk before vacuum)" >&2

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
time_view() {
    for _ in $(seq "$runs"); do
        local t0 t1
        t0=$(date +%s.%N)
        "$bin" -q --data "$1" view "$2" --format csv > /dev/null
        t1=$(date +%s.%N)
        echo "$t1 - $t0" | bc
    done | median
}

printf '%-22s %10s %12s %16s %11s\n' view once_s daily/once optimized/once auto/once
for sql in queries/*.sql; do
    view=$(basename "$sql" .sql)
    for store in once daily optimized auto; do
        "$bin" -q --data "$work/$store" view "$view" --format csv > "$work/$view-$store.csv"
    done
    cmp -s "$work/$view-once.csv" "$work/$view-daily.csv" || echo "warning: $view differs between once and daily" >&2
    cmp -s "$work/$view-once.csv" "$work/$view-optimized.csv" || echo "warning: $view differs after optimize" >&2
    cmp -s "$work/$view-once.csv" "$work/$view-auto.csv" || echo "warning: $view differs with auto-optimize" >&2
    once=$(time_view "$work/once" "$view")
    daily=$(time_view "$work/daily" "$view")
    optimized=$(time_view "$work/optimized" "$view")
    auto=$(time_view "$work/auto" "$view")
    printf '%-22s %10.3f %11.2fx %15.2fx %10.2fx\n' "$view" "$once" "$(echo "$daily / $once" | bc -l)" \
        "$(echo "$optimized / $once" | bc -l)" "$(echo "$auto / $once" | bc -l)"
done
