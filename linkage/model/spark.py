"""Splink on Spark for national batches: the same settings, comparisons and blocking as DuckDB.

Records reach Spark as one Parquet file written from the run's Arrow table into the work
directory, which the executors read in parallel: never row by row through Python, never over
JDBC. Pair scores come back as Arrow (`DataFrame.toArrow`). The work directory is Spark's
checkpoint directory (`spark.checkpoint.dir`, which Splink also uses to break lineage); on a
cluster it must be storage every executor reaches (HDFS, S3), and pyarrow must be able to
write to it. Without one, a local temporary directory is made and removed at exit.

Nothing is downloaded at run time: our comparisons use only `=`, `&`, `bit_count`, CAST and
array functions that Spark has built in, so Splink's similarity-UDF jar is not registered.
`pyspark` is an optional extra (`pip install cci-service[spark]`); this module imports it.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from splink.backends.spark import SparkAPI

from linkage.settings import linkage_settings

APP_NAME = "cci-linkage"
#: Local mode runs driver and executors in one JVM, whose heap is fixed when it starts.
DEFAULT_DRIVER_MEMORY = "4g"
_CHECKPOINT_CONF = "spark.checkpoint.dir"


def spark_session(
    master: str | None = None,
    *,
    driver_memory: str = DEFAULT_DRIVER_MEMORY,
    shuffle_partitions: int | None = None,
) -> SparkSession:
    """The process's SparkSession (created on first use, reused after).

    `master` defaults to CCI_SPARK_MASTER. Under spark-submit the session already exists and
    its configuration (driver memory, partitions, master) wins: static settings such as
    driver memory only take effect when this call is the one that starts the JVM.
    """
    builder = (
        SparkSession.builder.appName(APP_NAME)
        .master(master or linkage_settings().spark_master)
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    session = builder.getOrCreate()
    if shuffle_partitions is not None:  # an existing session: a runtime setting, so apply it
        session.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions))
    session.sparkContext.setLogLevel("ERROR")
    _quiet_codegen_fallback(session)
    return session


def _quiet_codegen_fallback(session: SparkSession) -> None:
    """Silence the stack trace Spark logs when whole-stage code generation of the scoring
    projection (dozens of `bit_count` sums) exceeds the JVM's 64 KB method limit. Spark then
    runs the same plan interpreted (`spark.sql.codegen.fallback`, on by default): the result
    is unchanged, and the trace would bury `cci link`'s own output."""
    jvm = session.sparkContext._jvm
    if jvm is None:
        return
    level = jvm.org.apache.logging.log4j.Level.OFF
    configurator = jvm.org.apache.logging.log4j.core.config.Configurator
    configurator.setLevel("org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator", level)
    configurator.setLevel("org.apache.spark.sql.execution.WholeStageCodegenExec", level)


def work_dir(session: SparkSession) -> str:
    """Where Parquet exchange and Splink's intermediate tables live (see module docstring):
    the context's checkpoint directory, set from `spark.checkpoint.dir` or a temporary one."""
    context = session.sparkContext
    if context.getCheckpointDir() is None:
        base = context.getConf().get(_CHECKPOINT_CONF)
        if not base:
            base = tempfile.mkdtemp(prefix="cci-spark-")
            atexit.register(shutil.rmtree, base, True)
        context.setCheckpointDir(base)  # Spark adds a unique sub-directory
    return str(context.getCheckpointDir())


def spark_api(session: SparkSession | None = None) -> SparkAPI:
    """A Splink backend on `session` (default: `spark_session()`), intermediate tables written
    as Parquet to the work directory, no UDF jar."""
    session = session or spark_session()
    work_dir(session)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    api: SparkAPI = SparkAPI(  # type: ignore[no-untyped-call]
        spark_session=session,
        break_lineage_method="parquet",
        register_udfs_automatically=False,
    )
    return api


def register_parquet(db_api: SparkAPI, records: pa.Table, name: str) -> Any:
    """Write `records` as Parquet to the work directory and register Spark's read of it.

    The view's name is made unique: temporary views outlive a SparkAPI in the session, and a
    second run in one process would otherwise find its input name taken."""
    session: SparkSession = db_api.spark
    unique = f"{name}_{uuid.uuid4().hex[:12]}"
    path = f"{work_dir(session).rstrip('/')}/{unique}.parquet"
    filesystem, inner = _filesystem(path)
    pq.write_table(records, inner, filesystem=filesystem, row_group_size=128 * 1024)
    return db_api.register(session.read.parquet(path), table_name=unique)


def _filesystem(path: str) -> tuple[Any, str]:
    """pyarrow's view of a Spark path: `file:/x` and plain paths are local; `s3a://` is S3."""
    if path.startswith("file:"):
        return pafs.LocalFileSystem(), "/" + path[len("file:") :].lstrip("/")
    if "://" not in path:
        return pafs.LocalFileSystem(), path
    if path.startswith("s3a://"):
        path = "s3://" + path[len("s3a://") :]
    filesystem, inner = pafs.FileSystem.from_uri(path)
    return filesystem, str(inner)
