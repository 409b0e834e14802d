"""`rerankq bench`'s pipeline workloads (ceiling, interactive), --peer, --database-url and the
per-process CPU figures, in a tiny configuration with real Redis, worker and API processes.

The Infinity peer is a stand-in speaking its HTTP shape (tests/bench/fake_peer.py), installed
as `<venv>/bin/infinity_emb`: the real one lives in its own venv that CI does not build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from commands.bench.pipeline import PIPELINE_TARGETS, evaluate
from commands.bench.proc_cpu import StackCpu, per_unit

HERE = Path(__file__).resolve().parent
PARTS = {"api", "worker", "redis", "client", "total"}


def fake_peer_venv(root: Path) -> Path:
    venv = root / "peer-venv"
    (venv / "bin").mkdir(parents=True)
    script = venv / "bin" / "infinity_emb"
    script.write_text(f"#!{sys.executable}\nimport os, runpy\n"
                      f"os.environ['FAKE_PEER_ARGV'] = {str(venv / 'argv.json')!r}\n"
                      f"runpy.run_path({str(HERE / 'fake_peer.py')!r}, run_name='__main__')\n")
    script.chmod(0o755)
    return venv


def run_bench(tmp_path: Path, *args: str) -> tuple[dict, str]:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "rerankq", "bench", "--quick", "--json", str(out),
               "--cache-dir", str(tmp_path / "cache"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def rows_by(result: dict) -> dict[tuple[str, str], dict]:
    return {(r["workload"], r["server"]): r for r in result["pipeline"]["rows"]}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_pipeline_workloads_with_a_peer_side_by_side(tmp_path):
    venv = fake_peer_venv(tmp_path)
    result, stdout = run_bench(tmp_path, "--workloads", "ceiling,interactive", "--clients", "3", "--requests", "12",
                               "--peer", "infinity", "--peer-venv", str(venv))
    assert result["workloads"] == [] and result["database"] == "sqlite"
    rows = rows_by(result)
    assert set(rows) == {("ceiling", "rerankq"), ("ceiling", "plain"), ("interactive", "rerankq"),
                         ("interactive", "infinity"), ("bulk-ce", "rerankq"), ("bulk-ce", "infinity")}
    ours, peer = rows[("interactive", "rerankq")], rows[("interactive", "infinity")]
    assert ours["requests"] == peer["requests"] == 12 and ours["pairs"] == 120 and ours["clients"] == 3
    for row in (ours, peer):
        assert row["req_per_s"] > 0 and 0 < row["latency_p50_ms"] <= row["latency_p99_ms"]
    # Every part of the stack used CPU, counted per request and per pair; the peer is one process.
    # Redis may round to 0: /proc counts CPU in 10 ms ticks, and 12 requests cost it less than one.
    assert PARTS <= set(ours["ms_per_request"]) and all(ours["cpu_s"][p] > 0 for p in ("api", "worker"))
    assert ours["cpu_s"]["redis"] >= 0
    assert ours["us_per_pair"]["worker"] == pytest.approx(1e6 * ours["cpu_s"]["worker"] / 120, rel=0.01)
    # The fake peer's CPU may round to 0 as Redis's does (10 ms ticks): only the accounting is checked.
    assert set(peer["cpu_s"]) == {"peer", "client", "total"} and peer["cpu_s"]["peer"] >= 0
    assert ours["worker_outside_forward_ms_per_request"] >= 0 and ours["forward_s"] > 0
    # The fake peer scored 1/(1+len): not the model, and the bench says how far apart they are.
    assert peer["max_score_diff_vs_rerankq"] > 0
    ceiling, plain = rows[("ceiling", "rerankq")], rows[("ceiling", "plain")]
    assert ceiling["pairs"] == plain["pairs"] == 3 * 2 * 20 and len(plain["runs_pairs_per_s"]) == 2
    assert ceiling["max_score_diff_vs_plain"] <= 1e-4  # the same near-free Qwen3 scores the same pairs
    assert rows[("bulk-ce", "rerankq")]["pairs"] == rows[("bulk-ce", "infinity")]["pairs"] == 2 * 2 * 20
    targets = result["pipeline"]["targets"]
    assert set(targets) == set(PIPELINE_TARGETS) and all(t["measured"] is not None for t in targets.values())
    argv = json.loads((venv / "argv.json").read_text())
    assert argv[0] == "v2" and argv[argv.index("--model-id") + 1].endswith("bert-cross-encoder-h32-l2")
    assert "CPU per request (ms)" in stdout and "infinity" in stdout
    assert "[MET " in stdout or "[MISS]" in stdout


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(900)
def test_interactive_against_a_throwaway_postgres(tmp_path, postgres_cluster):
    # postgres_cluster: a skip naming what is missing where the server binaries are not installed.
    result, _ = run_bench(tmp_path, "--workloads", "interactive", "--clients", "2", "--requests", "6",
                          "--database-url", "postgres")
    assert result["database"] == "postgresql"
    row = rows_by(result)[("interactive", "rerankq")]
    assert row["database"] == "postgresql" and row["requests"] == 6
    assert row["cpu_s"]["database"] > 0  # the cluster's backends are counted as the database's part


def test_peer_flag_needs_its_venv(tmp_path):
    command = [sys.executable, "-m", "rerankq", "bench", "--quick", "--workloads", "interactive", "--peer", "infinity",
               "--peer-venv", str(tmp_path / "missing")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "COLUMNS": "300"})  # one line per message in typer's error box
    assert done.returncode == 2 and "--peer-venv" in done.stderr and "infinity_emb" in done.stderr


def test_stack_cpu_counts_a_busy_process_tree(tmp_path):
    busy = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; subprocess.run([sys.executable, '-c', "
                             "'x = 0\\nfor i in range(10**9): x += i'])"])
    try:
        grandchild = wait_for_child(busy.pid)
        meter = StackCpu({"busy": busy.pid, "client": os.getpid(), "absent": None})
        before, own_before = meter.snapshot(), _cpu(grandchild)
        deadline = time.monotonic() + 20
        while _cpu(grandchild) - own_before < 0.1 and time.monotonic() < deadline:  # a shared, busy machine
            time.sleep(0.1)
        cpu = meter.since(before)
        own = _cpu(grandchild) - own_before
    finally:
        for child in psutil.Process(busy.pid).children(recursive=True):
            child.kill()
        busy.kill()
        busy.wait()
    assert set(cpu) == {"busy", "client"}
    assert own >= 0.1 and cpu["busy"] >= own - 0.02  # the grandchild's loop counts as its tree's
    figures = per_unit({"api": 0.5, "worker": 1.5}, requests=100, pairs=1000)
    assert figures["ms_per_request"] == {"api": 5.0, "worker": 15.0, "total": 20.0}
    assert figures["us_per_pair"]["total"] == 2000.0


def wait_for_child(pid: int) -> psutil.Process:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        children = psutil.Process(pid).children()
        if children:
            return children[0]
        time.sleep(0.05)
    raise AssertionError("the busy grandchild did not start")


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def test_pipeline_targets_compare_in_the_right_direction():
    rows = [
        {"workload": "interactive", "server": "rerankq", "req_per_s": 90.0, "latency_p99_ms": 200.0,
         "worker_outside_forward_ms_per_request": 2.5},
        {"workload": "interactive", "server": "infinity", "req_per_s": 100.0, "latency_p99_ms": 100.0},
        {"workload": "ceiling", "server": "rerankq", "pairs_per_s": 900.0, "worker_outside_forward_us_per_pair": 150},
        {"workload": "ceiling", "server": "plain", "pairs_per_s": 1000.0},
    ]
    met = {key: t["met"] for key, t in evaluate(rows).items()}
    assert met == {"interactive_req_s_vs_peer": True, "interactive_p99_vs_peer": False, "ceiling_vs_plain": False,
                   "interactive_worker_cpu_outside_forward_ms": True, "ceiling_worker_cpu_outside_forward_us": False}
    assert evaluate(rows[:1])["interactive_req_s_vs_peer"]["met"] is None  # no peer run: not measured


def test_profile_shares_leave_out_waiting_threads(tmp_path):
    from commands.bench.profile import summarize

    collapsed = tmp_path / "worker.txt"
    collapsed.write_text("\n".join([
        "run_chunk (workers/tasks.py:80);_save (workers/tasks.py:99);do_execute (sqlalchemy/engine/default.py:1) 30",
        "_loop (workers/batcher.py:1);forward (torch/nn/modules/linear.py:1) 50",
        "run_chunk (workers/tasks.py:80);execute (redis/client.py:1) 20",
        "_worker (concurrent/futures/thread.py:81) 900",
        "wait_for (workers/tasks.py:1);Condition.wait (threading.py:331) 500",
    ]))
    assert summarize(collapsed) == {"model": 50.0, "sql": 30.0, "redis": 20.0}
