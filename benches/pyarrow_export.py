"""Rewrite a plain-Parquet store the way another tool exports it: one file per table, written by
pyarrow with its defaults except 256Ki-row groups, rows shuffled (in no order a reader can use).

    python3 benches/pyarrow_export.py SOURCE_STORE OUT_STORE

SOURCE_STORE is a store of plain Parquet folders (`debtlens sample --plain-parquet`); OUT_STORE
gets one folder per table holding `part-0.parquet`. The shuffle's seed is fixed, so two exports
of the same store are the same files.
"""

import os
import sys

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def main(source: str, out: str) -> None:
    rng = np.random.default_rng(7)
    for table in sorted(os.listdir(source)):
        folder = os.path.join(source, table)
        if not os.path.isdir(folder):
            continue
        data = ds.dataset(folder, format="parquet").to_table()
        shuffled = data.take(rng.permutation(data.num_rows))
        os.makedirs(os.path.join(out, table), exist_ok=True)
        pq.write_table(shuffled, os.path.join(out, table, "part-0.parquet"), row_group_size=256 * 1024)
        print(f"{table}: {data.num_rows} rows", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
