#!/usr/bin/env bash
# debtlens against the DuckDB CLI, end to end, on the same questions over the same Parquet files.
#
#   benches/compare.sh [--big | --features N --incidents M] [--runs N] [--bin PATH] [--work DIR] [--no-write]
#
# 1. Generates a store (1M features, 5M incidents; --big: 10M and 50M) with `debtlens sample
#    --plain-parquet` (the generator is deterministic): debtlens's own layout (sorted by time,
#    row groups dealt over files, page statistics). Then exports the same rows the way another
#    tool would (benches/pyarrow_export.py: one file per table written by pyarrow, 256Ki-row
#    groups, rows shuffled).
# 2. The honest table: on the pyarrow export, debtlens's views against the DuckDB CLI given the
#    SQL a DuckDB user would write for each question (benches/duckdb/VIEW.sql), and against
#    DuckDB running the views' own SQL.
# 3. The second table: on debtlens's own layout, debtlens against DuckDB running the views' own
#    SQL: queries/*.sql with the analysis window's functions replaced by the literals debtlens
#    resolves and a few spellings changed (`cardinality` is `len`); `student_t_quantile` is a
#    DuckDB macro (the Cornish-Fisher expansion). Views built on the engine's `velocity_tax`,
#    `tax_model` or `delay_cost` have no DuckDB equivalent: debtlens is timed alone there.
# 4. Each view is timed N times (default 5), alternating the engines, each a fresh CLI process
#    writing CSV to /dev/null: both medians and their ratio. Row counts are compared.
# 5. Times CSV ingest of the features against DuckDB reading the same CSV into Parquet, and
#    cold start on the built-in sample against DuckDB's.
# 6. Writes the tables to BENCHMARKS.md with the date, the machine and the commit (unless
#    --no-write).
#
# DuckDB comes from PyPI (duckdb-cli) into a virtualenv under the work folder; the export needs
# pyarrow and numpy.
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
exported="$work/pyarrow-$features"
# A binary newer than the store may write another layout: generate again (about 15 s at 1M).
if [ ! -f "$plain/.written" ] || [ "$bin" -nt "$plain/.written" ]; then
    echo "generating $features features, $incidents incidents as plain Parquet..." >&2
    rm -rf "$plain" "$exported" "$work/features-$features.csv"
    "$bin" -q sample --out "$plain" --features "$features" --incidents "$incidents" --seed 7 --plain-parquet
    touch "$plain/.written"
fi
if [ ! -f "$exported/.written" ]; then
    echo "exporting the same rows with pyarrow (one shuffled file per table)..." >&2
    rm -rf "$exported"
    python3 benches/pyarrow_export.py "$plain" "$exported"
    touch "$exported/.written"
fi

# The window both engines use: the one debtlens resolves by default, as literals.
window=$("$bin" -q --data "$plain" query "SELECT window_start, as_of, window_days FROM analysis_window" --format csv | tail -1)
IFS=, read -r start as_of days <<<"$window"
as_of_flag=(--as-of "$as_of")
views=$("$bin" -q views --format csv | tail -n +2 | cut -d, -f1)

# Views that need one of the engine's own functions, directly or through another view.
needs_engine() {
    grep -v "^--" "queries/$1.sql" | grep -qE "velocity_tax\(|tax_model\(|delay_cost\(|system_tax|debt_cost"
}
# The DuckDB spelling of the analysis window and of a few functions.
duckdb_spelling() {
    sed -e '/^--/d' \
        -e "s/window_start()/TIMESTAMPTZ '$start'/g" \
        -e "s/window_end()/TIMESTAMPTZ '$as_of'/g" \
        -e "s/window_days()/$days/g" \
        -e "s/cardinality(/len(/g" \
        -e "s/\\bat\\b/\"at\"/g" \
        -e "s/CAST(CAST(\\([a-z_.]*\\)deployed_at AS BIGINT) AS VARCHAR)/CAST(epoch_us(\\1deployed_at) AS VARCHAR)/g" \
        -e "s/CAST(CAST(substr(packed, 1, 20) AS BIGINT) AS TIMESTAMP(6) WITH TIME ZONE)/make_timestamp(CAST(substr(packed, 1, 20) AS BIGINT))::TIMESTAMPTZ/g" \
        "$@"
}

# A DuckDB database over the Parquet files of a store: its tables, the macros, and every view
# DuckDB can answer as the views' own SQL.
duckdb_database() {
    local data=$1 db=$2
    rm -f "$db"
    {
        echo "SET TimeZone = 'UTC';"
        for t in "$data"/*/; do
            t=$(basename "$t")
            echo "CREATE VIEW $t AS SELECT * FROM read_parquet('$data/$t/*.parquet');"
        done
        # Student's t quantile (Cornish-Fisher, four terms: within 1e-3 from 3 degrees of freedom).
        echo "CREATE MACRO z_of(p) AS CASE WHEN p = 0.95 THEN 1.6448536269514722 ELSE 1.2815515655446004 END;"
        echo "CREATE MACRO student_t_quantile(p, df) AS CASE WHEN df > 0 THEN z_of(p)
            + (pow(z_of(p), 3) + z_of(p)) / (4 * df)
            + (5 * pow(z_of(p), 5) + 16 * pow(z_of(p), 3) + 3 * z_of(p)) / (96 * pow(df, 2))
            + (3 * pow(z_of(p), 7) + 19 * pow(z_of(p), 5) + 17 * pow(z_of(p), 3) - 15 * z_of(p)) / (384 * pow(df, 3)) END;"
        # The capacity views' exact daily sums and their exact total are plain sums in DuckDB.
        echo "CREATE MACRO exact_partials(x) AS sum(x);"
        echo "CREATE MACRO sum_partials(x) AS sum(x);"
        for view in $views; do
            if needs_engine "$view"; then continue; fi
            echo "CREATE VIEW $view AS"
            duckdb_spelling "queries/$view.sql" | sed -e '$s/;*$/;/'
        done
    } > "$db.sql"
    "$duckdb" "$db" < "$db.sql" >/dev/null
}

# The query a DuckDB user would write for a view's question, if benches/duckdb has one.
duckdb_user_query() {
    local file="benches/duckdb/$1.sql"
    if [ -f "$file" ]; then
        sed -e "s/@START@/$start/g" -e "s/@AS_OF@/$as_of/g" -e "s/@DAYS@/$days/g" "$file"
    else
        echo "SELECT * FROM $1"
    fi
}

# Wall time of one command, in seconds.
seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > /dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.3f", m }'; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
rows_of() { echo $(($(wc -l) - 1)); }

declare -A median_of
# One table: every view on the store DATA, debtlens against DuckDB's database DB running the
# views' own SQL and, with USER=1, against DuckDB running benches/duckdb's queries.
compare_views() {
    local data=$1 db=$2 user=$3 table
    if [ "$user" = 1 ]; then
        table="| view | rows | debtlens (s) | DuckDB, user's SQL (s) | ratio | DuckDB, view's SQL (s) | ratio |
|---|---:|---:|---:|---:|---:|---:|"
    else
        table="| view | rows | debtlens (s) | DuckDB, view's SQL (s) | ratio |
|---|---:|---:|---:|---:|"
    fi
    for view in $views; do
        local ours=() theirs=() users=() a b c n_ours rows row
        n_ours=$("$bin" -q --data "$data" "${as_of_flag[@]}" view "$view" --format csv | rows_of)
        rows=$n_ours
        if needs_engine "$view"; then
            for _ in $(seq "$runs"); do
                ours+=("$(seconds "$bin" -q --data "$data" "${as_of_flag[@]}" view "$view" --format csv)")
            done
            a=$(printf '%s\n' "${ours[@]}" | median)
            median_of[$view]=$a
            if [ "$user" = 1 ]; then row="| $view | $rows | $a | n/a (engine function) | | | |"; else row="| $view | $rows | $a | n/a (engine function) | |"; fi
            echo "$row" >&2
            table+=$'\n'"$row"
            continue
        fi
        # The same answer first: equal row counts (values may differ in their last float digits).
        local n_view n_user
        n_view=$("$duckdb" -readonly -csv "$db" -c "SELECT * FROM $view" | rows_of)
        [ "$n_view" = "$n_ours" ] || rows="$rows vs DuckDB $n_view"
        if [ "$user" = 1 ]; then
            n_user=$("$duckdb" -readonly -csv "$db" -c "$(duckdb_user_query "$view")" | rows_of)
            [ "$n_user" = "$n_ours" ] || rows="$rows vs DuckDB user's $n_user"
        fi
        for _ in $(seq "$runs"); do
            ours+=("$(seconds "$bin" -q --data "$data" "${as_of_flag[@]}" view "$view" --format csv)")
            theirs+=("$(seconds "$duckdb" -readonly -csv "$db" -c "SELECT * FROM $view")")
            if [ "$user" = 1 ]; then
                users+=("$(seconds "$duckdb" -readonly -csv "$db" -c "$(duckdb_user_query "$view")")")
            fi
        done
        a=$(printf '%s\n' "${ours[@]}" | median)
        b=$(printf '%s\n' "${theirs[@]}" | median)
        median_of[$view]=$a
        if [ "$user" = 1 ]; then
            c=$(printf '%s\n' "${users[@]}" | median)
            row="| $view | $rows | $a | $c | $(ratio "$a" "$c") | $b | $(ratio "$a" "$b") |"
        else
            row="| $view | $rows | $a | $b | $(ratio "$a" "$b") |"
        fi
        echo "$row" >&2
        table+=$'\n'"$row"
    done
    compared=$table
}

echo "the pyarrow export: debtlens, DuckDB with a DuckDB user's SQL, DuckDB with the views' SQL" >&2
duckdb_database "$exported" "$work/duck-pyarrow-$features.db"
compare_views "$exported" "$work/duck-pyarrow-$features.db" 1
honest=$compared
echo "debtlens's own layout: debtlens, DuckDB with the views' SQL" >&2
duckdb_database "$plain" "$work/duck-$features.db"
compare_views "$plain" "$work/duck-$features.db" 0
own=$compared

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
ingest_row="| CSV ingest of $rows features | | $a | $b | $(ratio "$a" "$b") |"

# Cold start: the built-in sample's main view against DuckDB's smallest query.
cold=()
duck_cold=()
for _ in $(seq "$runs"); do
    cold+=("$(seconds env -u DEBTLENS_DATA "$bin" -q view slowdown_by_system --format csv)")
    duck_cold+=("$(seconds "$duckdb" -csv -c "SELECT 42")")
done
a=$(printf '%s\n' "${cold[@]}" | median)
b=$(printf '%s\n' "${duck_cold[@]}" | median)
cold_row="| cold start (built-in sample / SELECT 42) | | $a | $b | $(ratio "$a" "$b") |"
echo "$ingest_row" >&2
echo "$cold_row" >&2
tax_row="| system_tax / slowdown_by_system (same run) | | ${median_of[system_tax]} | ${median_of[slowdown_by_system]} | $(ratio "${median_of[system_tax]}" "${median_of[slowdown_by_system]}") |"
echo "$tax_row" >&2

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs || true)
machine="$(nproc) cores (${cpu:-unknown CPU}), $(free -g | awk '/Mem:/ {print $2}') GiB"
big_flag=""
[ "$features" != 10000000 ] || big_flag=" --big"
report="## $(date -u +%Y-%m-%d): $features features, $incidents incidents

Machine: $machine. debtlens: \`$bin\` ($("$bin" --version), built from $(git rev-parse --short HEAD 2>/dev/null || echo "an unknown commit")$(git diff --quiet HEAD 2>/dev/null || echo " with uncommitted changes")). DuckDB CLI: $("$duckdb" -version | head -1).
Command: \`benches/compare.sh$big_flag --bin $bin --runs $runs\`, $runs runs per view, medians of wall time per CLI process.

### A pyarrow export (one shuffled file per table, 256Ki-row groups)

$honest

### debtlens's own layout (sorted, row groups dealt over files, page statistics)

$own

| other | | debtlens (s) | DuckDB (s) | ratio |
|---|---:|---:|---:|---:|
$ingest_row
$cold_row
$tax_row
"
echo "$report"
if [ "$write" = 1 ]; then
    [ -f BENCHMARKS.md ] || printf '# Benchmarks\n\nWritten by `benches/compare.sh`; newest first.\n\n' > BENCHMARKS.md
    # Newest first: before the first dated section.
    awk -v report="$report" '!done && /^## / { print report; done = 1 } { print } END { if (!done) print report }' \
        BENCHMARKS.md > BENCHMARKS.md.tmp
    mv BENCHMARKS.md.tmp BENCHMARKS.md
fi
