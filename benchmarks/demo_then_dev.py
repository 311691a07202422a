"""`make demo` then `make dev`: how many runs the Dagster start-up launches, and how soon the
run queue is empty.

Runs what the two make targets run, in a scratch folder: ``manufacturing-ingest demo`` (two
sample days of every source, ingested from the command line and recorded in the instance),
then ``dagster dev`` over the project's ``workspace.yaml`` with the project's ``dagster.yaml``
as the instance config. It then watches
the instance: runs launched, and the time from start-up until every landing sensor has ticked
and no run is queued or in progress. It keeps watching for ``--watch`` seconds in all, so late
run storms would be counted too.

    python benchmarks/demo_then_dev.py [--watch 180]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
SENSORS = ("sensor_data_landing_sensor", "equipment_logs_landing_sensor",
           "quality_metrics_landing_sensor")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watch", type=float, default=180.0,
                        help="seconds to watch the instance after dagster dev starts")
    args = parser.parse_args()

    from manufacturing_ingest_tests.alert_servers import free_port

    scratch = Path(tempfile.mkdtemp(prefix="demo-then-dev-"))
    home = scratch / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home),
           "MANUFACTURING_LANDING_URL": str(scratch / "landing"),
           "MANUFACTURING_LAKEHOUSE_URL": str(scratch / "lakehouse"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for name in [n for n in env if n.startswith(("MANUFACTURING_ALERT", "MANUFACTURING_QUEUE"))]:
        env.pop(name)

    began = time.monotonic()
    # As `make demo` runs it: recorded in the instance `make dev` then opens.
    subprocess.run([str(BIN / "manufacturing-ingest"), "demo"], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    demo_seconds = time.monotonic() - began
    print(f"make demo: {demo_seconds:.0f} s")

    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        # The demo's own runs (recorded in the instance): not the start-up's.
        demo_runs = {run.run_id for run in instance.get_runs()}
    log = open(scratch / "dagster_dev.log", "wb")
    dev = subprocess.Popen(
        [str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(free_port())],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    started = time.monotonic()
    try:
        results = watch(home, started, args.watch, demo_runs)
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
        log.close()
    results = {"demo_seconds": round(demo_seconds, 1), "demo_runs_recorded": len(demo_runs),
               **results}
    out = ROOT / "benchmarks" / "results" / "demo_then_dev.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:28} {value}")
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def watch(home: Path, started: float, seconds: float, demo_runs: set[str]) -> dict:
    """The start-up's runs and sensor ticks (the demo's runs, ``demo_runs``, left out)."""
    import dagster as dg
    from dagster._core.scheduler.instigation import InstigatorType, TickStatus

    busy = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
            dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED}
    drained_at = None
    peak_in_progress = 0
    first_ticks: dict[str, str] = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while time.monotonic() - started < seconds:
            time.sleep(2)
            for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
                if state.instigator_name not in SENSORS or state.instigator_name in first_ticks:
                    continue
                ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id,
                                           limit=5)
                done = [t for t in ticks if t.status is not TickStatus.STARTED]
                if done:
                    tick = done[-1]
                    first_ticks[state.instigator_name] = (
                        f"{tick.status.value}: {tick.skip_reason or tick.error or ''}"[:300]
                        if tick.status is not TickStatus.SUCCESS
                        else f"SUCCESS: {len(tick.run_ids)} run(s)")
            runs = [r for r in instance.get_runs() if r.run_id not in demo_runs]
            in_progress = sum(run.status in busy for run in runs)
            peak_in_progress = max(peak_in_progress, in_progress)
            if drained_at is None and len(first_ticks) == len(SENSORS) and not in_progress:
                drained_at = time.monotonic() - started
        runs = [r for r in instance.get_runs() if r.run_id not in demo_runs]
        return {
            "watched_seconds": round(time.monotonic() - started),
            "runs_launched": len(runs),
            "runs_by_job": {job: sum(r.job_name == job for r in runs)
                            for job in sorted({r.job_name for r in runs})},
            "peak_runs_in_progress": peak_in_progress,
            "sensors_ticked": len(first_ticks),
            "queue_empty_after_seconds": round(drained_at, 1) if drained_at else None,
            "first_ticks": first_ticks,
            "runs": [{"job": r.job_name, "status": r.status.value,
                      "started_by": r.tags.get("dagster/sensor_name")
                      or r.tags.get("dagster/schedule_name") or r.tags.get("dagster/backfill")
                      or "", "assets": sorted(k.to_user_string() for k in r.asset_selection or []),
                      "partitions": r.tags.get("dagster/partition")
                      or "..".join(filter(None, (r.tags.get("dagster/asset_partition_range_start"),
                                                  r.tags.get("dagster/asset_partition_range_end"))))}
                     for r in runs],
        }


if __name__ == "__main__":
    sys.exit(main())
