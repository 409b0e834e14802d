"""The randomized chaos soak, one minute of it: CI runs this; the README reports a 30-minute run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from commands.pg_cluster import missing_reason


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(960)  # one minute of load, plus start, drain and checks on a busy 2-core host
def test_one_minute_soak_holds_every_invariant(tmp_path, tiny_qwen3):
    reason = missing_reason()
    if reason:
        pytest.skip(f"the soak needs PostgreSQL: {reason}")
    out = tmp_path / "soak.json"
    done = subprocess.run([sys.executable, "-m", "rerankq", "soak", "--minutes", "1", "--seed", "7",
                           "--model", str(tiny_qwen3), "--keep", str(tmp_path / "stack"), "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["faults"]["injected"] >= 3 and summary["faults"]["survived"] == summary["faults"]["injected"]
    invariants = summary["invariants"]
    assert invariants["hold"] and invariants["lost"] == 0 and invariants["queued_left"] == 0
    assert invariants["pairs_checked"] > 0 and summary["load"]["jobs_accepted"] > 0
    assert invariants["by_status"].get("failed", 0) == summary["load"]["poison_jobs"]
