"""Runs a `debtlens export --dialect spark` script on Spark and compares every exported view
with debtlens's CSV of it (tests/it/spark.rs).

    python3 check_export.py SCRIPT MASTER EXPECTED_DIR VIEW...

SCRIPT's statements run in order on MASTER (a spark:// URL, or local[N]); then each VIEW is read
whole and compared with EXPECTED_DIR/VIEW.csv: the same rows, in any order (views of rows have
no order of their own), floats to 1e-9 relative, integers, text, dates and times exactly. Prints
one line per view and exits 1 at the first difference.
"""

import csv
import datetime
import math
import sys

from pyspark.sql import SparkSession


def statements(text):
    """The script's statements: each ends with `;` at the end of a line."""
    current = []
    for line in text.splitlines():
        if not current and (not line.strip() or line.startswith("--")):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            yield "\n".join(current).rstrip().rstrip(";")
            current = []


def spark_value(v):
    """A Spark value as debtlens's CSV writes it."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime.datetime):
        text = v.isoformat()
        return text + "Z"
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, list):
        return ";".join(spark_value(x) for x in v)
    return v


def same(a, b):
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        if a == "":
            return False
        x, y = float(a), float(b)
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return x == y or abs(x - y) <= 1e-9 * max(abs(x), abs(y))
    if isinstance(b, str) and b.endswith("Z") and "T" in b and a.endswith("Z"):
        # Times: debtlens writes the shortest fraction, Python six digits.
        parse = lambda t: datetime.datetime.fromisoformat(t[:-1])
        try:
            return parse(a) == parse(b)
        except ValueError:
            pass
    return a == b


def key(row):
    """An order for rows that floats differing in their last bits do not change."""
    out = []
    for v in row:
        try:
            f = float(v)
            out.append((0, float(f"{f:.6g}"), ""))
        except (TypeError, ValueError):
            out.append((1, 0.0, str(v)))
    return out


def session_with_script(master, app, script, **settings):
    """A Spark session on MASTER (UTC, no UI, quiet) with SCRIPT's statements run in order;
    `settings` are further Spark settings."""
    builder = (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    with open(script) as f:
        for statement in statements(f.read()):
            spark.sql(statement)
    return spark


def main():
    script, master, expected_dir, views = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    spark = session_with_script(
        master, "debtlens-export-check", script, **{"spark.sql.shuffle.partitions": "4"}
    )
    for view in views:
        with open(f"{expected_dir}/{view}.csv", newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            expected = [row for row in reader]
        frame = spark.sql(f"SELECT * FROM {view}")
        if frame.columns != header:
            print(f"{view}: columns {frame.columns} on Spark, {header} in debtlens")
            sys.exit(1)
        got = [[spark_value(v) for v in row] for row in frame.collect()]
        if len(got) != len(expected):
            print(f"{view}: {len(got)} rows on Spark, {len(expected)} in debtlens")
            sys.exit(1)
        for g, e in zip(sorted(got, key=key), sorted(expected, key=key)):
            if not all(same(a, b) for a, b in zip(e, g)):
                print(f"{view}: a row differs\n  debtlens: {e}\n  spark:    {g}")
                sys.exit(1)
        print(f"{view}: {len(got)} rows equal")
    spark.stop()


if __name__ == "__main__":
    main()
