#!/usr/bin/env bash
# How view time and memory grow with the size of a store, on one machine: runs every view once
# through the CLI over each store given and prints a Markdown table of wall time (seconds) and
# peak RSS (MiB), measured by /usr/bin/time -v. Used for docs/scale.md.
#
#   benches/scale.sh [--bin PATH] [--memory-limit SIZE] STORE...
#
# Make stores with `debtlens sample --out DIR --features N --incidents M --seed 7`.
set -euo pipefail

bin=target/release/debtlens
limit=()
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --memory-limit) limit=(--memory-limit "$2"); shift 2 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: benches/scale.sh [--bin PATH] [--memory-limit SIZE] STORE..." >&2; exit 2; }
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release, or give --bin" >&2; exit 2; }

views=$("$bin" -q views --format csv | tail -n +2 | cut -d, -f1)
header="| view |"
rule="|---|"
for store in "$@"; do
    n=$("$bin" -q --data "$store" query "SELECT count(*) FROM features" --format csv | tail -1)
    header+=" $n features: s | MiB |"
    rule+="---:|---:|"
done
echo "$header"
echo "$rule"
for view in $views; do
    line="| $view |"
    for store in "$@"; do
        out=$( { /usr/bin/time -v "$bin" -q --data "$store" "${limit[@]}" view "$view" --format csv > /dev/null; } 2>&1 ) || {
            line+=" failed | |"; continue; }
        secs=$(grep "Elapsed (wall clock)" <<<"$out" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
        kib=$(grep "Maximum resident set size" <<<"$out" | awk '{print $NF}')
        line+=" $secs | $((kib / 1024)) |"
    done
    echo "$line"
done
