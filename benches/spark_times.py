"""Times each view of a `debtlens export --dialect spark` script on a Spark master
(benches/spark.sh starts one).

    python3 benches/spark_times.py SCRIPT MASTER RUNS VIEW...

The script's statements run once; then each view is computed whole RUNS times (written to
Spark's `noop` sink, so every row is produced and none is collected to the driver). Prints one
tab-separated line per view: the view, the first run's seconds (with the JVM's and the files'
first-read costs), and the median of the others.
"""

import statistics
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/tests/spark")
from check_export import session_with_script  # noqa: E402


def main():
    script, master, runs, views = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    # Spark's own defaults otherwise (200 shuffle partitions), as a first user runs it.
    spark = session_with_script(master, "debtlens-spark-times", script)
    for view in views:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            spark.sql(f"SELECT * FROM {view}").write.format("noop").mode("overwrite").save()
            times.append(time.perf_counter() - start)
        rest = times[1:] or times
        print(f"{view}\t{times[0]:.3f}\t{statistics.median(rest):.3f}", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
