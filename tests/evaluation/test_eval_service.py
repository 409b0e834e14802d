"""`rerankq eval` through the running service (real API, Redis, worker on the tiny Qwen3, SDK jobs) gives
the same run as `--direct`, and a second run of the same command resumes instead of scoring again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store.db import session_scope
from store.tables import Job
from tests.evaluation.beir_fixture import write_collection, write_run


def read_run(path: Path) -> dict[str, list[tuple[str, float]]]:
    run: dict = {}
    for line in path.read_text().splitlines():
        qid, _, did, rank, score, _ = line.split()
        run.setdefault(qid, []).append((int(rank), did, float(score)))
    return {q: [(d, s) for _, d, s in sorted(rows)] for q, rows in run.items()}


def job_count(stack) -> int:
    with session_scope(stack.database_url) as session:
        return session.scalar(select(func.count()).select_from(Job))


@pytest.mark.slow
def test_direct_and_through_the_service_give_the_same_run(stack, tmp_path):
    root = write_collection(tmp_path / "beir")
    first = write_run(tmp_path / "first.trec")
    common = ["eval", "--dataset", str(root), "--run", str(first), "--top-k", "5", "--no-progress"]

    service = stack.cli(*common, "--url", stack.base_url, "--batch-size", "4", "--json", str(tmp_path / "svc.json"),
                        "--save-run", str(tmp_path / "svc.trec"))
    assert service.returncode == 0, service.stderr
    direct = stack.cli(*common, "--direct", "--json", str(tmp_path / "dir.json"), "--save-run", str(tmp_path / "dir.trec"))
    assert direct.returncode == 0, direct.stderr

    by_service, by_direct = read_run(tmp_path / "svc.trec"), read_run(tmp_path / "dir.trec")
    assert set(by_service) == set(by_direct) and len(by_service) == 6
    for qid in by_service:
        assert [d for d, _ in by_service[qid]] == [d for d, _ in by_direct[qid]], qid
        assert [s for _, s in by_service[qid]] == pytest.approx([s for _, s in by_direct[qid]], abs=1e-5)
    svc, dire = json.loads((tmp_path / "svc.json").read_text()), json.loads((tmp_path / "dir.json").read_text())
    assert svc["systems"][1]["name"] == dire["systems"][1]["name"] == str(stack.model_dir)
    assert svc["systems"][1]["revision"] == dire["systems"][1]["revision"]
    for a, b in zip(svc["systems"], dire["systems"]):
        assert a["metrics"] == pytest.approx(b["metrics"], abs=1e-9)
    assert "first-stage" in service.stdout and "paired t-test" in service.stdout
    assert (tmp_path / "svc.json.state").is_dir()  # requests, results and job ids, for resuming

    # The same command again re-uses the finished results: no new job, the same report.
    jobs = job_count(stack)
    again = stack.cli(*common, "--url", stack.base_url, "--batch-size", "4", "--json", str(tmp_path / "svc.json"),
                      "--save-run", str(tmp_path / "svc.trec"))
    assert again.returncode == 0, again.stderr
    assert job_count(stack) == jobs
    assert json.loads((tmp_path / "svc.json").read_text()) == svc
    assert "6 of 6 queries for the default model were scored by an earlier run" in again.stderr


@pytest.mark.slow
def test_an_interrupted_service_run_resumes_where_it_stopped(stack, tmp_path):
    """Half of the results are lost (as if the run was killed after its first jobs): the rerun scores only
    the rest, re-attaching to the jobs already submitted by their idempotency keys."""
    root = write_collection(tmp_path / "beir")
    first = write_run(tmp_path / "first.trec")
    args = ["eval", "--dataset", str(root), "--run", str(first), "--top-k", "5", "--no-progress", "--url",
            stack.base_url, "--batch-size", "2", "--state", str(tmp_path / "state"), "--json", str(tmp_path / "r.json")]
    assert stack.cli(*args).returncode == 0
    report = json.loads((tmp_path / "r.json").read_text())
    results = next((tmp_path / "state").glob("*.results.jsonl"))
    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines[:3]) + "\n" + lines[3][:10])  # three lines kept, one cut short
    jobs = job_count(stack)
    resumed = stack.cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert job_count(stack) == jobs  # re-attached, not re-submitted
    assert len(results.read_text().splitlines()) == 6
    assert json.loads((tmp_path / "r.json").read_text()) == report
