#!/usr/bin/env bash
# debtlens against the DuckDB CLI, end to end, on the same views over the same Parquet files.
#
#   benches/compare.sh [--big | --features N --incidents M] [--runs N] [--bin PATH] [--work DIR] [--no-write]
#
# 1. Generates a store (1M features, 5M incidents; --big: 10M and 50M) with `debtlens sample`
#    and exports the same data as plain Parquet (the generator is deterministic), which both
#    engines read.
# 2. Creates every view of queries/*.sql in a DuckDB database, as views over those files. The SQL
#    is the product's own, with the analysis window's functions replaced by the literals
#    debtlens resolves and `cardinality` spelled `len`; `student_t_quantile` is a DuckDB macro
#    (the Cornish-Fisher expansion). Views built on the engine's `velocity_tax` (system_tax and
#    the views that join it) have no DuckDB equivalent: debtlens is timed alone there, and
#    system_tax's ratio is given against slowdown_by_system in the same run.
# 3. Times every view N times (default 5), alternating debtlens and DuckDB, each a fresh CLI
#    process writing CSV to /dev/null, and prints view, both medians and their ratio.
# 4. Times CSV ingest of 1M features against DuckDB reading the same CSV into Parquet, and cold
#    start on the built-in sample against DuckDB's.
# 5. Writes the table to BENCHMARKS.md with the date and the machine (unless --no-write).
#
# DuckDB comes from PyPI (duckdb-cli) into a virtualenv under the work folder.
set -euo pipefail
cd "$(dirname "$0")/.."

features=1000000
incidents=5000000
runs=5
bin=target/release/debtlens
work=target/compare
write=1
while [ $# -gt 0 ]; do
    case "$1" in
        --big) features=10000000; incidents=50000000; shift ;;
        --features) features=$2; shift 2 ;;
        --incidents) incidents=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --no-write) write=0; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ ! -x "$bin" ]; then
    echo "building $bin (cargo build --release)..." >&2
    cargo build --release --locked >&2
fi
mkdir -p "$work"

duckdb="$work/venv/bin/duckdb"
if [ ! -x "$duckdb" ]; then
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q --disable-pip-version-check "duckdb-cli>=1.4"
fi

plain="$work/plain-$features"
# A binary newer than the store may write another layout: generate again (about 15 s at 1M).
if [ ! -f "$plain/.written" ] || [ "$bin" -nt "$plain/.written" ]; then
    echo "generating $features features, $incidents incidents as plain Parquet..." >&2
    rm -rf "$plain" "$work/features-$features.csv"
    "$bin" -q sample --out "$plain" --features "$features" --incidents "$incidents" --seed 7 --plain-parquet
    touch "$plain/.written"
fi

# The window both engines use: the one debtlens resolves by default, as literals.
window=$("$bin" -q --data "$plain" query "SELECT window_start, as_of, window_days FROM analysis_window" --format csv | tail -1)
IFS=, read -r start as_of days <<<"$window"
as_of_flag=(--as-of "$as_of")

# Views that need the engine's velocity_tax, directly or through another view.
needs_engine() { grep -qE 'velocity_tax\(|system_tax' "queries/$1.sql"; }

db="$work/duck-$features.db"
rm -f "$db"
{
    echo "SET TimeZone = 'UTC';"
    for t in features incidents capacity; do
        echo "CREATE VIEW $t AS SELECT * FROM read_parquet('$plain/$t/*.parquet');"
    done
    # Student's t quantile (Cornish-Fisher, four terms: within 1e-3 from 3 degrees of freedom).
    echo "CREATE MACRO z_of(p) AS CASE WHEN p = 0.95 THEN 1.6448536269514722 ELSE 1.2815515655446004 END;"
    echo "CREATE MACRO student_t_quantile(p, df) AS CASE WHEN df > 0 THEN z_of(p)
        + (pow(z_of(p), 3) + z_of(p)) / (4 * df)
        + (5 * pow(z_of(p), 5) + 16 * pow(z_of(p), 3) + 3 * z_of(p)) / (96 * pow(df, 2))
        + (3 * pow(z_of(p), 7) + 19 * pow(z_of(p), 5) + 17 * pow(z_of(p), 3) - 15 * z_of(p)) / (384 * pow(df, 3)) END;"
    for view in $("$bin" -q views --format csv | tail -n +2 | cut -d, -f1); do
        if needs_engine "$view"; then continue; fi
        echo "CREATE VIEW $view AS"
        sed -e '/^--/d' \
            -e "s/window_start()/TIMESTAMPTZ '$start'/g" \
            -e "s/window_end()/TIMESTAMPTZ '$as_of'/g" \
            -e "s/window_days()/$days/g" \
            -e "s/cardinality(/len(/g" \
            "queries/$view.sql" | sed -e '$s/;*$/;/'
    done
} > "$work/duck-views.sql"
"$duckdb" "$db" < "$work/duck-views.sql" >/dev/null

# Wall time of one command, in seconds.
seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > /dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.3f", m }'; }

table="| view | rows | debtlens median (s) | DuckDB CLI median (s) | debtlens / DuckDB |
|---|---:|---:|---:|---:|"
declare -A median_of
for view in $("$bin" -q views --format csv | tail -n +2 | cut -d, -f1); do
    if needs_engine "$view"; then
        n_ours=$("$bin" -q --data "$plain" "${as_of_flag[@]}" view "$view" --format csv | wc -l)
        ours=()
        for _ in $(seq "$runs"); do
            ours+=("$(seconds "$bin" -q --data "$plain" "${as_of_flag[@]}" view "$view" --format csv)")
        done
        a=$(printf '%s\n' "${ours[@]}" | median)
        median_of[$view]=$a
        row="| $view | $((n_ours - 1)) | $a | n/a (needs velocity_tax) | |"
        echo "$row" >&2
        table+=$'\n'"$row"
        continue
    fi
    # The same answer first: equal row counts (values may differ in their last float digits).
    n_ours=$("$bin" -q --data "$plain" "${as_of_flag[@]}" view "$view" --format csv | wc -l)
    n_theirs=$("$duckdb" -readonly -csv "$db" -c "SELECT * FROM $view" | wc -l)
    rows=$((n_ours - 1))
    [ "$n_ours" = "$n_theirs" ] || rows="$((n_ours - 1)) vs DuckDB $((n_theirs - 1))"
    ours=()
    theirs=()
    for _ in $(seq "$runs"); do
        ours+=("$(seconds "$bin" -q --data "$plain" "${as_of_flag[@]}" view "$view" --format csv)")
        theirs+=("$(seconds "$duckdb" -readonly -csv "$db" -c "SELECT * FROM $view")")
    done
    a=$(printf '%s\n' "${ours[@]}" | median)
    b=$(printf '%s\n' "${theirs[@]}" | median)
    median_of[$view]=$a
    ratio=$(echo "$a / $b" | bc -l | xargs printf '%.2f')
    row="| $view | $rows | $a | $b | $ratio |"
    echo "$row" >&2
    table+=$'\n'"$row"
done

# CSV ingest of the features against DuckDB reading the same CSV into Parquet.
csv="$work/features-$features.csv"
[ -f "$csv" ] || "$bin" -q --data "$plain" query "SELECT * FROM features" --format csv > "$csv"
ingest=()
duck_ingest=()
for _ in $(seq 3); do
    rm -rf "$work/ingest-store" "$work/duck.parquet"
    "$bin" -q init "$work/ingest-store"
    ingest+=("$(seconds "$bin" -q --data "$work/ingest-store" ingest features "$csv")")
    duck_ingest+=("$(seconds "$duckdb" -c "COPY (SELECT * FROM read_csv('$csv')) TO '$work/duck.parquet' (FORMAT parquet)")")
done
a=$(printf '%s\n' "${ingest[@]}" | median)
b=$(printf '%s\n' "${duck_ingest[@]}" | median)
rows=$((features))
ingest_row="| CSV ingest of $rows features | | $a | $b | $(echo "$a / $b" | bc -l | xargs printf '%.2f') |"

# Cold start: the built-in sample's main view against DuckDB's smallest query.
cold=()
duck_cold=()
for _ in $(seq "$runs"); do
    cold+=("$(seconds env -u DEBTLENS_DATA "$bin" -q view slowdown_by_system --format csv)")
    duck_cold+=("$(seconds "$duckdb" -csv -c "SELECT 42")")
done
a=$(printf '%s\n' "${cold[@]}" | median)
b=$(printf '%s\n' "${duck_cold[@]}" | median)
cold_row="| cold start (built-in sample / SELECT 42) | | $a | $b | $(echo "$a / $b" | bc -l | xargs printf '%.2f') |"
echo "$ingest_row" >&2
echo "$cold_row" >&2
tax_row="| system_tax / slowdown_by_system (same run) | | ${median_of[system_tax]} | ${median_of[slowdown_by_system]} | $(echo "${median_of[system_tax]} / ${median_of[slowdown_by_system]}" | bc -l | xargs printf '%.2f') |"
echo "$tax_row" >&2

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs || true)
machine="$(nproc) cores (${cpu:-unknown CPU}), $(free -g | awk '/Mem:/ {print $2}') GiB"
big_flag=""
[ "$features" != 10000000 ] || big_flag=" --big"
report="## $(date -u +%Y-%m-%d): $features features, $incidents incidents

Machine: $machine. debtlens: \`$bin\` ($("$bin" --version), built from $(git rev-parse --short HEAD 2>/dev/null || echo "an unknown commit")$(git diff --quiet HEAD 2>/dev/null || echo " with uncommitted changes")). DuckDB CLI: $("$duckdb" -version | head -1).
Command: \`benches/compare.sh$big_flag --bin $bin\`, $runs runs per view, medians of wall time per CLI process.

$table

| other | | debtlens (s) | DuckDB (s) | ratio |
|---|---:|---:|---:|---:|
$ingest_row
$cold_row
$tax_row
"
echo "$report"
if [ "$write" = 1 ]; then
    [ -f BENCHMARKS.md ] || printf '# Benchmarks\n\nWritten by `benches/compare.sh`; newest first.\n\n' > BENCHMARKS.md
    { head -4 BENCHMARKS.md; echo "$report"; tail -n +5 BENCHMARKS.md; } > BENCHMARKS.md.tmp
    mv BENCHMARKS.md.tmp BENCHMARKS.md
fi
