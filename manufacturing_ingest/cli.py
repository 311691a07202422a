"""``manufacturing-ingest``: generate sample data, ingest partitions, and look inside the lake."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from manufacturing_ingest.catalog import CATALOG, get_source
from manufacturing_ingest.settings import Settings

log = logging.getLogger("manufacturing_ingest")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # Progress lines of this package on stderr; other libraries only when they warn.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        return args.func(args) or 0
    except (KeyError, ValueError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="manufacturing-ingest", description=__doc__)
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

    demo = sub.add_parser("demo", help="generate a sample day, ingest it, print rows per table")
    demo.add_argument("--date", type=_date, default=None, help="day (default yesterday, UTC)")
    demo.set_defaults(func=_demo)

    rows = sub.add_parser("rows", help="rows per bronze table")
    rows.set_defaults(func=_rows)

    hist = sub.add_parser("history", help="commit history of a bronze table")
    hist.add_argument("source")
    hist.add_argument("--limit", type=int, default=20)
    hist.set_defaults(func=_history)

    files = sub.add_parser("files", help="landed files of a partition with their ledger state")
    files.add_argument("source")
    files.add_argument("partition")
    files.set_defaults(func=_files)

    jars = sub.add_parser("fetch-jars", help="fetch the Delta jars into the environment (mvn)")
    jars.set_defaults(func=_fetch_jars)
    return parser


def _date(text: str) -> date:
    return datetime.strptime(text, "%Y-%m-%d").date()


def _yesterday() -> date:
    return (datetime.now(UTC) - timedelta(days=1)).date()


def _sources(name: str):
    return list(CATALOG.values()) if name == "all" else [get_source(name)]


def _generate(args) -> int:
    from manufacturing_ingest.landing import LocalLandingZone, landing_zone_for

    settings = Settings.from_env()
    zone = landing_zone_for(settings.landing_url, role_arn=settings.s3_role_arn or None)
    with tempfile.TemporaryDirectory(prefix="manufacturing-generate-") as scratch:
        root = zone.root if isinstance(zone, LocalLandingZone) else Path(scratch)
        _generate_into(args, root)
        if not isinstance(zone, LocalLandingZone):
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


def partition_range(spec, first: str, last: str | None) -> tuple[str, str]:
    """A daily key given for an hourly source means all of that day's hours."""
    last = last or first
    if spec.partitioning == "hourly":
        if len(first) == 10:
            first = f"{first}-00:00"
        if len(last) == 10:
            last = f"{last}-23:00"
    else:
        first, last = first[:10], last[:10]
    return first, last


def materialize_partitions(source_names: list[str], first: str, last: str | None,
                           reprocess: bool = False) -> list[dict]:
    """Run the bronze assets for a partition range in this process; one result per source."""
    import dagster as dg

    from manufacturing_ingest.definitions import defs

    instance = dg.DagsterInstance.get() if _has_dagster_home() else dg.DagsterInstance.ephemeral()
    results = []
    for name in source_names:
        spec = get_source(name)
        start, end = partition_range(spec, first, last)
        asset = next(a for a in defs.assets
                     if isinstance(a, dg.AssetsDefinition)
                     and a.key == dg.AssetKey(spec.asset_key_path))
        keys = asset.partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
        if reprocess and len(keys) != 1:
            raise ValueError("--reprocess rebuilds one partition; give a single --partition")
        log.info("%s: ingesting %d partition(s) %s … %s", name, len(keys), start, end)
        began = time.monotonic()
        op_name = "__".join(spec.asset_key_path)
        result = dg.materialize(
            [asset, *[a for a in defs.assets if isinstance(a, dg.AssetSpec)]],
            selection=[asset.key],
            instance=instance,
            resources=defs.resources,
            tags={"dagster/asset_partition_range_start": keys[0],
                  "dagster/asset_partition_range_end": keys[-1]},
            run_config={
                "ops": {op_name: {"config": {"reprocess": reprocess}}},
                # The engine's own progress lines go to stderr; Dagster's event stream stays quiet.
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            },
            raise_on_error=True,
        )
        materialization = result.asset_materializations_for_node(op_name)[0]
        metadata = {k: v.value for k, v in materialization.metadata.items()}
        # "seconds" is the whole call, Dagster run included; the engine's own is "engine_seconds".
        results.append({**metadata, "engine_seconds": metadata.get("seconds"), "source": name,
                        "partitions": len(keys), "run_id": result.run_id,
                        "seconds": time.monotonic() - began})
    return results


def _has_dagster_home() -> bool:
    import os

    return bool(os.environ.get("DAGSTER_HOME"))


def _ingest(args) -> int:
    names = [spec.name for spec in _sources(args.source)]
    results = materialize_partitions(names, args.partition, args.last, args.reprocess)
    failed = 0
    for r in results:
        failed += r["files_failed"]
        print(f"{r['source']}: {r['records']} rows from {r['files_processed']} files "
              f"({r['files_skipped']} already in, {r['files_failed']} failed, "
              f"{r['files_ignored']} ignored) in {r['seconds']:.1f}s; "
              f"delta version {r.get('delta_version', '-')}")
    if failed:
        print(f"{failed} file(s) failed and will be retried on the next run; "
              "see `manufacturing-ingest files SOURCE PARTITION`", file=sys.stderr)
    return 1 if failed else 0


def _demo(args) -> int:
    day = args.date or _yesterday()
    volumes = {"sensor_data": (12, 5000), "equipment_logs": (6, 2000), "quality_metrics": (1, 400)}
    for source, (files, rows) in volumes.items():
        _generate(argparse.Namespace(
            source=source, date=day, hour=None, files=files, rows=rows, file_format=None,
            gzip=False, anomaly_rate=0.01, duplicate_rate=0.0, late_files=0,
            extra_columns=False, seed=7,
        ))
    names = list(CATALOG)
    for r in materialize_partitions(names, day.isoformat(), None):
        print(f"{r['source']}: ingested {r['records']} rows from {r['files_processed']} files "
              f"in {r['seconds']:.1f}s")
    return _rows(args)


def _spark():
    from manufacturing_ingest.engine.spark import get_spark_session

    return get_spark_session(Settings.from_env())


def _lakehouse():
    from manufacturing_ingest.engine.bronze import Lakehouse

    return Lakehouse(Settings.from_env().lakehouse_url)


def _rows(_args) -> int:
    from manufacturing_ingest.engine import delta

    spark, lakehouse = _spark(), _lakehouse()
    print(f"{'table':40} {'rows':>12}  location")
    for spec in CATALOG.values():
        path = lakehouse.table_path(spec)
        count = (spark.read.format("delta").load(path).count()
                 if delta.is_table(spark, path) else 0)
        print(f"{spec.table_name:40} {count:>12}  {path}")
    return 0


def _history(args) -> int:
    from manufacturing_ingest.engine import delta

    spec = get_source(args.source)
    spark, path = _spark(), _lakehouse().table_path(get_source(args.source))
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
    return 0


def _files(args) -> int:
    from manufacturing_ingest.engine.ledger import FileLedger, file_states
    from manufacturing_ingest.landing import is_ignored, landing_zone_for

    spec = get_source(args.source)
    settings = Settings.from_env()
    partition = partition_range(spec, args.partition, None)[0]
    zone = landing_zone_for(settings.landing_url)
    landed = zone.partition_objects(spec, [partition])
    spark = _spark()
    states = file_states(FileLedger(spark, _lakehouse().ledger_path).events(spec.name,
                                                                             [partition]))
    print(f"{spec.name} {partition}: {len(landed)} objects landed")
    print(f"{'status':10} {'rows':>8} {'tries':>5}  object")
    for obj in landed:
        state = states.get((obj.key, obj.etag))
        if is_ignored(obj.key):
            status, rows, tries, extra = "ignored", "-", "-", ""
        elif state is None:
            status, rows, tries, extra = "new", "-", "0", ""
        else:
            status, rows, tries = state.status, state.rows if state.rows is not None else "-", \
                state.attempts
            extra = f"  ({state.error or state.note})" if (state.error or state.note) else ""
        print(f"{status:10} {rows!s:>8} {tries!s:>5}  {obj.key}{extra}")
    return 0


def _fetch_jars(_args) -> int:
    from manufacturing_ingest.engine.jars import fetch_jars

    folder = Settings.from_env().spark_jars_dir
    for jar in fetch_jars(folder):
        print(jar)
    return 0


if __name__ == "__main__":
    sys.exit(main())
