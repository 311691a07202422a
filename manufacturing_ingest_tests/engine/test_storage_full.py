"""A lakehouse whose disk fills during a run: one clear line, no partial file left behind,
and the next run (with room again) lands every row once.

The lakehouse is a 1 MiB tmpfs mounted in a private mount namespace (``unshare --mount
--map-root-user``: no root needed, nothing visible outside), and the console script runs in
it as an operator runs it. Its own JVM is in the namespace, so it cannot use the tests' warm
Spark Connect server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Every Parquet file under the lakehouse's tables, and how many of them their table references
# (a file no version references is what a failed write left).
TABLES = """
import json, os, sys
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
lake = os.environ["LAKE"]
found = {}
for name in ("manufacturing_bronze/sensor_data", "_manufacturing_ingest/file_ledger"):
    folder = os.path.join(lake, name)
    on_disk = sorted(os.path.join(d, n) for d, _, files in os.walk(folder)
                     for n in files if n.endswith(".parquet"))
    try:
        table = DeltaTable(folder)
    except TableNotFoundError:
        found[name] = {"on_disk": len(on_disk), "referenced": 0, "rows": 0, "distinct": 0}
        continue
    referenced = {os.path.normpath(u.removeprefix("file://")) for u in table.file_uris()}
    data = table.to_pyarrow_table().to_pylist()
    keys = {tuple(sorted((k, str(v)) for k, v in r.items() if k != "_ingested_at"))
            for r in data}
    found[name] = {"on_disk": len(on_disk), "referenced": len(referenced & set(on_disk)),
                   "rows": len(data), "distinct": len(keys)}
with open(os.path.join(os.environ["OUT"], sys.argv[1] + ".json"), "w") as out:
    json.dump(found, out)
os._exit(0)  # delta-rs' runtime can abort at interpreter exit inside the namespace
"""

SCRIPT = """
set -u
mount -t tmpfs -o size=1m tmpfs "$LAKE"
"$CLI" ingest --source sensor_data --partition 2026-11-20 > "$OUT/full.out" 2> "$OUT/full.err"
echo $? > "$OUT/full.rc"
"$PYTHON" -c "$TABLES" full
mount -o remount,size=256m "$LAKE"
"$CLI" ingest --source sensor_data --partition 2026-11-20 > "$OUT/room.out" 2> "$OUT/room.err"
echo $? > "$OUT/room.rc"
"$PYTHON" -c "$TABLES" room
"""


@pytest.mark.spark
@pytest.mark.subprocess
def test_a_full_disk_is_one_clear_line_and_leaves_nothing_behind(tmp_path: Path):
    bin_dir = Path(sys.executable).parent
    landing, lake, out = tmp_path / "landing", tmp_path / "lake", tmp_path / "out"
    for folder in (lake, out):
        folder.mkdir()
    env = {**os.environ, "MANUFACTURING_LANDING_URL": str(landing),
           "MANUFACTURING_LAKEHOUSE_URL": str(lake), "LAKE": str(lake), "OUT": str(out),
           "CLI": str(bin_dir / "manufacturing-ingest"), "PYTHON": sys.executable,
           "TABLES": TABLES}
    for name in ("MANUFACTURING_SPARK_REMOTE", "DAGSTER_HOME"):
        env.pop(name, None)
    generated = subprocess.run(
        [env["CLI"], "generate", "--source", "sensor_data", "--date", "2026-11-20",
         "--files", "2", "--rows", "100000"], env=env, capture_output=True, text=True,
        timeout=120)
    assert generated.returncode == 0, generated.stderr

    subprocess.run([shutil.which("unshare"), "--mount", "--map-root-user", "sh", "-c", SCRIPT],
                   env=env, check=True, timeout=600)

    full_err = (out / "full.err").read_text()
    assert (out / "full.rc").read_text().strip() == "2", full_err
    errors = [line for line in full_err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, full_err
    assert f"no space left on the lakehouse's storage ({lake})" in errors[0]
    assert "while ingesting sensor_data 2026-11-20" in errors[0]
    assert "Nothing is lost or doubled" in errors[0] and "run again" in errors[0]
    # Progress lines and the one error: no stack trace from Python or the JVM.
    assert "Traceback" not in full_err and "\tat org.apache" not in full_err, full_err[:3000]
    assert len(full_err.splitlines()) < 10, full_err[:3000]
    # The files the failed writes left are gone: whatever is on disk is in a commit (the disk
    # fills during bronze's write here; in the ledger's, the same cleanup runs).
    assert "claimed batch 0" in full_err  # the ledger had room for the claim …
    assert "bronze commit" not in full_err  # … and bronze none for the rows
    after_full = json.loads((out / "full.json").read_text())
    assert after_full["manufacturing_bronze/sensor_data"]["rows"] == 0
    for name, table in after_full.items():
        assert table["on_disk"] == table["referenced"], (name, after_full)

    assert (out / "room.rc").read_text().strip() == "0", (out / "room.err").read_text()
    assert "0 failed" in (out / "room.out").read_text()
    after_room = json.loads((out / "room.json").read_text())
    bronze = after_room["manufacturing_bronze/sensor_data"]
    assert bronze["rows"] == bronze["distinct"] == 200000, after_room  # every row, once
    for name, table in after_room.items():
        assert table["on_disk"] == table["referenced"], (name, after_room)
