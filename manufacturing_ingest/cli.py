"""``manufacturing-ingest``: generate sample data, ingest partitions, and look inside the lake."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.errors import UserError
from manufacturing_ingest.printable import printable
from manufacturing_ingest.settings import Settings

log = logging.getLogger("manufacturing_ingest")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _show_progress(args.progress, args.verbose)
    if args.verbose:
        os.environ.setdefault("MANUFACTURING_SPARK_LOG_LEVEL", "WARN")
    try:
        settings = Settings.from_env()
        return args.func(args, settings) or 0
    except UserError as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        return 2


class _ProgressFormatter(logging.Formatter):
    """Engine progress events as text lines, or as JSON lines with ``--progress json``."""

    def __init__(self, as_json: bool):
        super().__init__("%(asctime)s %(message)s", datefmt="%H:%M:%S")
        self.as_json = as_json

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        # One line per record: a file name's newline or ESC sequence is shown escaped.
        return printable(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "progress_event", None)
        if self.as_json:
            return event.to_json() if event is not None else ""
        return super().format(record)


def _show_progress(mode: str, verbose: bool = False) -> None:
    """Progress lines of this package on stderr; other libraries only when they warn (with
    ``--verbose``, from INFO)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr)
    for old in [h for h in log.handlers if isinstance(h.formatter, _ProgressFormatter)]:
        log.removeHandler(old)  # main() called again in one process (tests, notebooks)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ProgressFormatter(as_json=mode == "json"))
    if mode == "json":
        handler.addFilter(lambda record: hasattr(record, "progress_event"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="manufacturing-ingest", description=__doc__)
    parser.add_argument("--progress", choices=["text", "json"], default="text",
                        help="how the engine's progress is shown on stderr: text lines "
                             "(default) or one JSON object per event, for scripts")
    parser.add_argument("--verbose", action="store_true",
                        help="also show Spark's own WARN lines and other libraries' INFO lines "
                             "(MANUFACTURING_SPARK_LOG_LEVEL=WARN unless it is set)")
    sub = parser.add_subparsers(required=True, metavar="command")

    gen = sub.add_parser("generate", help="write realistic sample files into the landing zone")
    gen.add_argument("--source", default="all", help="a source name or 'all' (default)")
    gen.add_argument("--date", type=_date, default=None, help="day to generate (default yesterday)")
    gen.add_argument("--hour", type=int, default=None, help="one hour only (hourly sources)")
    gen.add_argument("--files", type=int, default=4, help="files per day (per hour if hourly)")
    gen.add_argument("--rows", type=int, default=1000, help="rows per file")
    gen.add_argument("--format", dest="file_format", choices=["csv", "json", "parquet"])
    gen.add_argument("--gzip", action="store_true", help="gzip CSV and JSON files")
    gen.add_argument("--anomaly-rate", type=float, default=0.0,
                     help="share of rows with an out-of-range or non-numeric value")
    gen.add_argument("--duplicate-rate", type=float, default=0.0, help="share of rows repeated")
    gen.add_argument("--late-files", type=int, default=0,
                     help="extra files that land hours after their partition closed")
    gen.add_argument("--extra-columns", action="store_true",
                     help="add a column the catalog does not know (schema evolution)")
    gen.add_argument("--seed", type=int, default=7)
    gen.set_defaults(func=_generate)

    ing = sub.add_parser("ingest", help="materialize bronze partitions (no UI needed)")
    ing.add_argument("--source", default="all", help="a source name or 'all' (default)")
    ing.add_argument("--partition", required=True,
                     help="first partition: YYYY-MM-DD (daily; hourly sources take the whole "
                          "day) or YYYY-MM-DD-HH:00")
    ing.add_argument("--to", dest="last", default=None, help="last partition of a range")
    ing.add_argument("--reprocess", action="store_true",
                     help="rebuild the partition from all landed files (replaceWhere)")
    ing.set_defaults(func=_ingest)

    demo = sub.add_parser("demo", help="two sample days (a clean one, then one with bad "
                                       "readings) ingested and checked, and a late file the "
                                       "landing sensor's sweep finds; recorded in the Dagster "
                                       "instance make dev opens")
    demo.add_argument("--date", type=_date, default=None,
                      help="the bad day (default yesterday, UTC); the clean day is the one before")
    demo.set_defaults(func=_demo)

    stream = sub.add_parser(
        "stream", help="commit new files to bronze within seconds, until stopped",
        description="The streaming pattern: one long-running process on a warm Spark session "
                    "finds new files every --poll-seconds (a listing of the recent date "
                    "prefixes, or the source's SQS queue) and commits them in micro-batches "
                    "through the same claim/commit protocol as runs, so it can run beside the "
                    "landing sensors and backfills. Each micro-batch is a materialization of "
                    "its partitions in the Dagster instance under DAGSTER_HOME (else "
                    "./.dagster_home, which make dev opens); the quality check runs over each "
                    "--check-window. SIGTERM or Ctrl-C finishes the micro-batch under way and "
                    "exits 0.")
    stream.add_argument("--source", default="all", help="a source name or 'all' (default)")
    stream.add_argument("--poll-seconds", type=_positive(float), default=1.0,
                        help="how often each source looks for new files (default 1)")
    stream.add_argument("--max-files", type=_positive(int), default=500,
                        help="files per micro-batch and source at most: a burst is taken this "
                             "many at a time (default 500)")
    stream.add_argument("--check-window", type=_positive(float), default=60.0,
                        help="seconds of micro-batches the quality check judges together "
                             "(default 60)")
    stream.add_argument("--retry-seconds", type=_positive(float), default=60.0,
                        help="how long a file that failed waits before it is read again "
                             "(default 60)")
    stream.set_defaults(func=_stream)

    rows = sub.add_parser("rows", help="rows per bronze table")
    rows.set_defaults(func=_rows)

    hist = sub.add_parser("history", help="commit history of a bronze table, and its files "
                                           "per partition")
    hist.add_argument("source")
    hist.add_argument("--limit", type=int, default=20)
    hist.add_argument("--partitions", type=int, default=10,
                      help="file figures of the newest N partitions (default 10)")
    hist.set_defaults(func=_history)

    maintain = sub.add_parser(
        "maintain", help="compact closed partitions and the ledger, then VACUUM, now",
        description="What the table_maintenance job does, now, in this process: OPTIMIZE of "
                    "every closed partition holding small files (from --since, default the "
                    "MANUFACTURING_MAINTENANCE_LOOKBACK_DAYS), of the file ledger and the "
                    "schema log, then VACUUM with MANUFACTURING_VACUUM_RETENTION_HOURS.")
    maintain.add_argument("--source", default="all", help="a source name or 'all' (default)")
    maintain.add_argument("--since", type=_date, default=None,
                          help="examine closed partitions from this day (YYYY-MM-DD)")
    maintain.add_argument("--dry-run", action="store_true",
                          help="show what would be compacted and vacuumed; change nothing")
    maintain.set_defaults(func=_maintain)

    files = sub.add_parser("files", help="landed files of a partition with their ledger state")
    files.add_argument("source")
    files.add_argument("partition")
    files.set_defaults(func=_files)

    quality = sub.add_parser(
        "quality", help="latest check results of a partition, from the Dagster instance",
        description="The latest quality, schema_drift and landing_backlog results of a "
                    "partition as the runs recorded them in the Dagster instance under "
                    "DAGSTER_HOME. Exit code 1 when a check failed with severity ERROR.")
    quality.add_argument("source")
    quality.add_argument("partition", help="YYYY-MM-DD (an hourly source shows every hour "
                                           "of the day) or YYYY-MM-DD-HH:00")
    quality.set_defaults(func=_quality)

    alerts = sub.add_parser("alerts", help="alert sinks")
    alerts_sub = alerts.add_subparsers(required=True, metavar="action")
    alerts_test = alerts_sub.add_parser(
        "test", help="send a test alert through every configured sink",
        description="Sends one test alert to the JSON log line, the webhook and email, as "
                    "configured by the MANUFACTURING_ALERT_* variables. Exit code 1 when a "
                    "sink failed.")
    alerts_test.set_defaults(func=_alerts_test)

    jars = sub.add_parser("fetch-jars", help="fetch the Delta jars into the environment (mvn)")
    jars.add_argument("--s3a", action="store_true",
                      help="also hadoop-aws and the AWS SDK bundle (about 700 MB), which an "
                           "s3:// lakehouse needs on the local engine")
    jars.set_defaults(func=_fetch_jars)

    server = sub.add_parser(
        "spark-server", help="run a long-lived local Spark Connect server (one JVM for all runs)",
        description="Runs Spark's Connect server in the foreground with this project's Delta "
                    "session settings, until stopped. Point runs at it with "
                    "MANUFACTURING_SPARK_REMOTE=sc://HOST:PORT: each run then skips starting "
                    "its own JVM (see BENCHMARKS.md, per run). Listens on loopback by default.")
    server.add_argument("--port", type=int, default=15002, help="gRPC port (default 15002)")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on")
    server.set_defaults(func=_spark_server)
    return parser


def _date(text: str) -> date:
    return datetime.strptime(text, "%Y-%m-%d").date()


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text}: must be above 0")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its error
    return parse


def _yesterday() -> date:
    return (datetime.now(UTC) - timedelta(days=1)).date()


def _sources(name: str):
    return list(CATALOG.values()) if name == "all" else [get_source(name)]


def _generate(args, settings: Settings) -> int:
    from manufacturing_ingest.landing import LocalLandingZone, landing_zone_for

    zone = landing_zone_for(settings.landing_url, role_arn=settings.s3_role_arn or None)
    with tempfile.TemporaryDirectory(prefix="manufacturing-generate-") as scratch:
        root = zone.root if isinstance(zone, LocalLandingZone) else Path(scratch)
        _generate_into(args, root)
        if not isinstance(zone, LocalLandingZone):
            from manufacturing_ingest.landing.s3 import S3LandingZone
            from manufacturing_ingest.s3_security import encrypt_writes

            if isinstance(zone, S3LandingZone):  # SSE-KMS under MANUFACTURING_S3_KMS_KEY_ID
                encrypt_writes(zone.client)
            uploaded = zone.upload_tree(root)
            print(f"uploaded {uploaded} files to {zone.root_uri}")
    return 0


def _generate_into(args, root: Path) -> None:
    from manufacturing_ingest.generate import GenerateOptions, generate

    day = args.date or _yesterday()
    for spec in _sources(args.source):
        fmt = args.file_format if args.file_format in spec.formats else None
        options = GenerateOptions(
            files=args.files, rows_per_file=args.rows, file_format=fmt, compress=args.gzip,
            anomaly_rate=args.anomaly_rate, duplicate_rate=args.duplicate_rate,
            late_files=args.late_files, extra_columns=args.extra_columns, seed=args.seed,
        )
        paths = generate(root, spec.name, day, args.hour, options)
        size = sum(p.stat().st_size for p in paths)
        print(f"{spec.name}: wrote {len(paths)} files ({size / 1e6:.1f} MB) for {day} "
              f"under {root / spec.landing_prefix}")


def _ingest(args, settings: Settings) -> int:
    from manufacturing_ingest.orchestration.runs import materialize_partitions

    names = [spec.name for spec in _sources(args.source)]
    results = materialize_partitions(settings, names, args.partition, args.last, args.reprocess)
    failed = 0
    for r in results:
        m = r.metadata
        failed += m["files_failed"]
        print(f"{r.source}: {m['records']} rows from {m['files_processed']} files "
              f"({m['files_skipped']} already in, {m['files_failed']} failed, "
              + (f"{m['files_held']} held, " if m.get("files_held") else "") +
              f"{m['files_ignored']} ignored) in {r.seconds:.1f}s; "
              f"delta version {m.get('delta_version', '-')}")
    held = sum(r.metadata.get("files_held", 0) for r in results)
    if failed:
        print(f"{failed} file(s) failed; `manufacturing-ingest files SOURCE PARTITION` says why "
              "and whether they will be retried on the next run (a file whose bytes cannot be "
              "ingested waits for a new upload, an archived one for its restore)",
              file=sys.stderr)
    if held:
        print(f"{held} file(s) held: they failed before and are not read again yet; "
              "`manufacturing-ingest files SOURCE PARTITION` says why and until when",
              file=sys.stderr)
    return 1 if failed else 0


def _demo(args, settings: Settings) -> int:
    import dagster as dg

    from manufacturing_ingest.orchestration.demo import run_demo

    home = _demo_home()
    with dg.DagsterInstance.get() as instance:
        today = args.date + timedelta(days=1) if args.date else None
        summary = run_demo(settings, instance, today)
    _rows(args, settings)
    print()
    failed = [(source, r) for source, results in summary.checks.items()
              for r in results if not r.passed]
    for source, results in summary.checks.items():
        print(f"{source}: {len(results)} check results, "
              f"{sum(not r.passed for r in results) or 'none'} failed")
    for source, r in failed:
        print(f"  {source} {r.check} {r.partition or ''} {r.severity}: {r.description}")
    print(f"alert sensor: {summary.alerts}")
    late = summary.late
    print(f"late file: {printable(late.uri)} landed after {late.partition} was ingested; "
          f"{late.sensor}'s sweep found it, run {late.run.run_id[:8]} took "
          f"its {late.run.metadata['records']} rows")
    where = (f"{failed[0][0]} → Checks: {failed[0][1].check} failed on {failed[0][1].partition}"
             if failed else "<source> → Checks: every check passed")
    print(f"""
Recorded in the Dagster instance at {home}. See it in the UI: `make dev`, then open
{settings.alerts.ui_url} and look at
  1. Assets → Lineage: raw/<source> → manufacturing_bronze/<source>, each materialized
  2. manufacturing_bronze/{where}
  3. manufacturing_bronze/sensor_data → Plots: rows, files and latency of each run""")
    return 0


def _stream(args, settings: Settings) -> int:
    import threading

    import dagster as dg

    from manufacturing_ingest.landing import landing_zone_for
    from manufacturing_ingest.orchestration.stream import (
        BronzeStream,
        StreamOptions,
        stop_on_signals,
    )

    if settings.databricks is not None:
        raise UserError("the stream runs the local engine; on Databricks, ingest continuously "
                        "with Auto Loader (MANUFACTURING_READ_MODE=autoloader, see "
                        "docs/deployment.md)")
    home = _demo_home()
    specs = [settings.configured(spec) for spec in _sources(args.source)]
    options = StreamOptions(poll_seconds=args.poll_seconds, max_files=args.max_files,
                            check_window_seconds=args.check_window,
                            retry_seconds=args.retry_seconds)
    stop = threading.Event()
    # Signals first: a SIGTERM while Spark starts stops the stream before its first poll.
    with stop_on_signals(stop), dg.DagsterInstance.get() as instance:
        log.info("stream: recording into the Dagster instance at %s", home)
        zone = landing_zone_for(settings.landing_url, role_arn=settings.s3_role_arn or None)
        stream = BronzeStream(_spark(settings), specs, zone, _lakehouse(settings),
                              settings.read_mode, dict(settings.queue_urls), instance, options,
                              stop)
        stream.run()
    return 0


def _demo_home() -> Path:
    """The instance the demo records into: ``DAGSTER_HOME``, else ``.dagster_home`` here (what
    ``make dev`` opens), with this folder's ``dagster.yaml`` if it has none."""
    home = Path(os.environ.get("DAGSTER_HOME", "").strip() or ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() and Path("dagster.yaml").is_file():
        (home / "dagster.yaml").write_bytes(Path("dagster.yaml").read_bytes())
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _spark(settings: Settings):
    from manufacturing_ingest.engine.spark import get_spark_session

    return get_spark_session(settings.spark)


def _lakehouse(settings: Settings):
    from manufacturing_ingest.engine.lakehouse import Lakehouse

    return Lakehouse(settings.lakehouse_url, catalog=settings.catalog)


def _rows(_args, settings: Settings) -> int:
    from manufacturing_ingest.engine import delta

    spark, lakehouse = _spark(settings), _lakehouse(settings)
    print(f"{'table':40} {'rows':>12}  location")
    for spec in CATALOG.values():
        path = lakehouse.table(spec)
        count = delta.read_table(spark, path).count() if delta.is_table(spark, path) else 0
        print(f"{spec.table_name:40} {count:>12}  {path}")
    return 0


def _history(args, settings: Settings) -> int:
    from manufacturing_ingest.engine import delta

    spec = get_source(args.source)
    spark, path = _spark(settings), _lakehouse(settings).table(spec)
    if not delta.is_table(spark, path):
        print(f"{spec.table_name} has no table yet at {path}")
        return 0
    commits = delta.commits_after(spark, path, max(-1, delta.table_version(spark, path)
                                                   - args.limit))
    print(f"{'version':>7}  {'committed (UTC)':19}  {'operation':10} {'rows':>9}  "
          f"{'mode':11} batch  new columns")
    for c in commits:
        meta, metrics = c["userMetadata"], c["operationMetrics"] or {}
        print(f"{c['version']:>7}  {c['timestamp']:%Y-%m-%d %H:%M:%S}  {c['operation']:10} "
              f"{metrics.get('numOutputRows', '-'):>9}  {meta.get('mode', '-'):11} "
              f"{meta.get('batch_version', '-'):>5}  "
              f"{', '.join(meta.get('added_columns', {})) or '-'}")
    _print_file_stats(spark, spec, path, settings, args.partitions)
    return 0


def _print_file_stats(spark, spec, path: str, settings: Settings, newest: int) -> None:
    """Files per partition: count, small files (under a quarter of the target size), mean."""
    from manufacturing_ingest.engine.maintenance import MaintenanceOptions, partition_file_stats
    from manufacturing_ingest.engine.progress import human_size

    options = MaintenanceOptions.from_settings(settings.maintenance)
    stats = list(partition_file_stats(spark, spec, path, options.small_file_bytes).values())
    print(f"\nfiles per partition (newest {min(newest, len(stats))} of {len(stats)}; small: "
          f"under {human_size(options.small_file_bytes)})")
    print(f"{'partition':16} {'files':>7} {'small':>7} {'mean size':>10} {'total':>10}")
    for s in stats[-newest:] if newest > 0 else []:
        print(f"{s.partition:16} {s.files:>7} {s.small_files:>7} "
              f"{human_size(s.mean_file_bytes):>10} {human_size(s.bytes):>10}")


def _maintain(args, settings: Settings) -> int:
    from manufacturing_ingest.engine.maintenance import (
        MaintenanceOptions,
        maintain_bookkeeping,
        maintain_source,
    )

    options = MaintenanceOptions.from_settings(settings.maintenance, dry_run=args.dry_run)
    since = datetime.combine(args.since, datetime.min.time(), UTC) if args.since else None
    spark, lakehouse = _spark(settings), _lakehouse(settings)

    def show(step) -> None:
        print(step.message(), flush=True)

    for spec in _sources(args.source):
        report = maintain_source(spark, spec, lakehouse, options, since=since, on_step=show)
        if report.vacuum is None and report.skipped is None:
            print(f"{spec.table_name}: no table yet at {report.table}")
    if args.source == "all":
        maintain_bookkeeping(spark, lakehouse, options, on_step=show)
    return 0


def _files(args, settings: Settings) -> int:
    from manufacturing_ingest.engine.ledger import FileLedger, file_states
    from manufacturing_ingest.engine.read import FailureKind
    from manufacturing_ingest.landing import ignore_reason, landing_zone_for

    spec = get_source(args.source)
    partition = spec.partitions.widen(args.partition)[0]
    zone = landing_zone_for(settings.landing_url, role_arn=settings.s3_role_arn or None)
    landed = zone.partition_objects(spec, [partition])
    ledger = FileLedger(_spark(settings), _lakehouse(settings).ledger_path)
    states = file_states(ledger.events(spec.name, [partition]))
    print(f"{spec.name} {partition}: {len(landed)} objects landed")
    if landed and not spec.partitions.dagster_partitions().has_partition_key(partition):
        print(f"not ingested: {spec.partitions.outside_why(partition)}")
    print(f"{'status':10} {'rows':>8} {'tries':>5}  object")
    for obj in landed:
        state = states.get((obj.key, obj.etag))
        if reason := ignore_reason(obj):
            status, rows, tries, extra = "ignored", "-", "-", f"  ({reason})"
        elif state is None:
            status, rows, tries, extra = "new", "-", "0", ""
        else:
            status = state.status.value
            rows = state.rows if state.rows is not None else "-"
            tries = state.attempts
            extra = f"  ({state.error or state.note})" if (state.error or state.note) else ""
            if state.status.value == "failed":
                extra = f"  ({FailureKind.of(state.note).value}: {state.error})"
        print(f"{status:10} {rows!s:>8} {tries!s:>5}  {printable(obj.key)}{printable(extra)}")
    return 0


def _quality(args, settings: Settings) -> int:
    from manufacturing_ingest.orchestration.report import latest_check_results, persistent_instance

    spec = get_source(args.source)
    instance = persistent_instance()
    results = latest_check_results(instance, spec, args.partition)
    if not results:
        print(f"no check results for {spec.table_name} {args.partition} in the instance at "
              f"{instance.root_directory}: materialize the partition first (UI, sensor, or "
              "`manufacturing-ingest ingest` with DAGSTER_HOME set)")
        return 1
    print(f"{spec.table_name} {args.partition}: latest check results")
    print(f"{'check':16} {'partition':16} {'result':7} {'when (UTC)':19}  {'run':8}  summary")
    for r in results:
        outcome = "passed" if r.passed else r.severity
        print(f"{r.check:16} {r.partition or '(asset)':16} {outcome:7} "
              f"{r.at:%Y-%m-%d %H:%M:%S}  {r.run_id[:8] or '-':8}  {r.description}")
        if not r.passed:
            for line in _check_details(r.metadata):
                print(f"{'':18}{line}")
    return 1 if any(not r.passed and r.severity == "ERROR" for r in results) else 0


def _check_details(metadata: dict) -> list[str]:
    """The figures of a failed check, one line each: counts per rule, then a few examples."""
    lines = []
    if "rows_checked" in metadata:
        lines.append(f"rows checked {metadata['rows_checked']}, failing "
                     f"{metadata.get('failing_rows', 0)} "
                     f"({metadata.get('error_rate', 0):.2%}), delta version "
                     f"{metadata.get('delta_version', '-')}")
    for rule, count in (metadata.get("failing_rows_by_rule") or {}).items():
        if count:
            lines.append(f"{rule}: {count} rows")
    shown = 0
    for rule, rows in (metadata.get("failing_examples") or {}).items():
        for row in rows:
            if shown == 5:
                break
            lines.append(f"e.g. {rule}: {json.dumps(row, default=str)}")
            shown += 1
    if added := metadata.get("added_columns"):
        lines.append("added columns: " + ", ".join(f"{k} {v}" for k, v in added.items()))
    for name in ("uncommitted_objects", "backlog_seconds", "oldest_uncommitted"):
        if metadata.get(name):
            lines.append(f"{name}: {metadata[name]}")
    return lines


def _alerts_test(_args, settings: Settings) -> int:
    from manufacturing_ingest.orchestration.report import send_test_alerts

    _, report = send_test_alerts(settings)
    for sink, alert_id in report.delivered:
        print(f"{sink:8} delivered (alert {alert_id})")
    for failure in report.failed:
        print(f"{failure.sink:8} FAILED: {failure.error}")
    if not settings.alerts.webhook and not settings.alerts.email:
        print("only the log line is configured: set MANUFACTURING_ALERT_WEBHOOK_URL and/or "
              "MANUFACTURING_ALERT_SMTP_HOST (see the README, Alerts)")
    return 0 if report.ok else 1


def _fetch_jars(args, settings: Settings) -> int:
    from manufacturing_ingest.engine.jars import S3A_FOLDER, fetch_jars, s3a_artifacts

    for jar in fetch_jars(settings.spark.jars_dir):
        print(jar)
    if args.s3a:
        for jar in fetch_jars(settings.spark.jars_dir / S3A_FOLDER, s3a_artifacts()):
            print(jar)
    return 0


def _spark_server(args, settings: Settings) -> int:
    import os

    import pyspark

    from manufacturing_ingest.engine.spark import connect_server_command

    if settings.spark.remote:
        raise UserError("MANUFACTURING_SPARK_REMOTE is set: this process would be a client of "
                        f"{settings.spark.remote}, not a server; unset it to run a server")
    command = connect_server_command(settings.spark, args.port, args.host)
    print(f"Spark Connect server on sc://{args.host}:{args.port} "
          f"(MANUFACTURING_SPARK_REMOTE=sc://{args.host}:{args.port}); Ctrl-C stops it",
          file=sys.stderr, flush=True)
    # spark-submit finds Spark's jars through SPARK_HOME: the installed pyspark's own.
    env = {**os.environ, "SPARK_HOME": os.environ.get("SPARK_HOME")
           or str(Path(pyspark.__file__).parent)}
    os.execve(command[0], command, env)  # the server takes this process's place (and pid)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
