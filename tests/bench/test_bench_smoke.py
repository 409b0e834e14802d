"""`rerankq bench --quick` runs end to end (direct, naive, system with real processes) on a tiny
model and writes JSON with every figure; the modes agree on the scores they compute."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from commands.bench.report import TARGETS, evaluate_targets
from core.stats import percentile

WORKLOADS = ["small", "bulk", "mixed", "long", "idle"]
DIRECT = {"pairs_per_s", "seconds", "batches", "mean_batch", "padding_efficiency", "other_load_cores"}
SYSTEM = {"pairs_per_s", "seconds", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "batches", "mean_batch",
          "padding_efficiency", "batcher_wait_ms", "idle_waits", "broker_wait_ms", "max_score_diff_vs_direct",
          "other_load_cores"}
NAIVE = {"pairs_per_s", "sampled_pairs", "seconds", "head_share", "max_score_diff_vs_direct", "other_load_cores"}


@pytest.mark.slow
def test_quick_bench_writes_every_figure(tiny_qwen3, tmp_path):
    out = tmp_path / "bench.json"
    env_args = [sys.executable, "-m", "rerankq", "bench", "--quick", "--model", str(tiny_qwen3), "--json", str(out),
                "--cache-dir", str(tmp_path / "cache"), "--workloads", ",".join(WORKLOADS)]  # pipeline: test_bench_pipeline
    done = subprocess.run(env_args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "sys/dir" in done.stdout and f"wrote {out}" in done.stdout

    result = json.loads(out.read_text())
    assert [row["workload"] for row in result["workloads"]] == WORKLOADS
    for row in result["workloads"]:
        assert DIRECT <= set(row["direct"]), row["workload"]
        assert SYSTEM <= set(row["system"]), row["workload"]
        assert NAIVE <= set(row["naive"]), row["workload"]
        assert row["system_vs_direct"] > 0 and row["system_vs_naive"] > 0
        assert row["system"]["pairs_per_s"] > 0 and row["system"]["batches"] >= 1
        assert 0 < row["system"]["padding_efficiency"] <= 1
        # The same model scores the same pairs in every mode (batch composition moves floats a little).
        assert row["system"]["max_score_diff_vs_direct"] <= 1e-4, row
        assert row["naive"]["max_score_diff_vs_direct"] <= 1e-4, row
    idle = result["workloads"][-1]
    assert idle["direct"]["job_p50_ms"] > 0 and idle["system"]["sync_p50_ms"] > 0
    # Each idle job is timed directly and through the system in turn: one time of each per job.
    per_job = idle["per_job_ms"]
    assert len(per_job["direct"]) == len(per_job["job"]) == len(per_job["sync"]) == idle["jobs"]
    assert result["targets"]["idle_overhead_ms"]["measured"] == idle["overhead_ms"]["job_paired_p50"]
    prefix = result["prefix_reuse"]
    assert prefix["max_score_diff"] <= 1e-5 and prefix["speedup"] > 0
    assert prefix["padded_tokens"]["with_reuse"] < prefix["padded_tokens"]["without_reuse"]
    assert set(result["targets"]) == set(TARGETS)
    assert all(t["measured"] is not None and t["met"] in (True, False) for t in result["targets"].values())
    assert {"vocab_size", "hidden_size", "lm_head_params", "layer_params"} <= set(result["model"])
    assert {"cpus", "torch_threads", "loadavg_at_start"} <= set(result["machine"])


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50.0, 95.0, 99.0)
    assert percentile([3.0], 99) == 3.0 and percentile([], 50) is None


def test_targets_compare_in_the_right_direction():
    rows = {"bulk": {"system_vs_direct": 0.95, "system_vs_naive": 7.0},
            "mixed": {"system": {"padding_efficiency": 0.91}},
            "idle": {"system": {"latency_p50_ms": 130.0}, "direct": {"job_p50_ms": 100.0}}}
    targets = evaluate_targets(rows, {"speedup": 1.7, "max_score_diff": 2e-5})
    met = {key: t["met"] for key, t in targets.items()}
    assert met == {"bulk_system_vs_direct": True, "bulk_system_vs_naive": False, "mixed_padding_efficiency": True,
                   "idle_overhead_ms": False, "prefix_speedup": True, "prefix_max_score_diff": False}
    assert targets["idle_overhead_ms"]["measured"] == 30.0
    paired = evaluate_targets({**rows, "idle": {**rows["idle"], "overhead_ms": {"job_paired_p50": 12.5}}}, None)
    assert paired["idle_overhead_ms"]["measured"] == 12.5 and paired["idle_overhead_ms"]["met"] is True


def test_bench_flagging_prints_both_cases():
    from typer.testing import CliRunner

    from commands.cli import app

    result = CliRunner().invoke(app, ["bench-flagging", "--docs", "5", "--repeats", "1"])
    assert result.exit_code == 0, result.output
    assert "never flagged" in result.output and "always flagged" in result.output and "5 docs" in result.output
