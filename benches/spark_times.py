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

from pyspark.sql import SparkSession

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/tests/spark")
from check_export import statements  # noqa: E402


def main():
    script, master, runs, views = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    spark = (
        SparkSession.builder.master(master)
        .appName("debtlens-spark-times")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    with open(script) as f:
        for statement in statements(f.read()):
            spark.sql(statement)
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
