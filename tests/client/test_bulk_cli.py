"""`rerankq submit INPUT.jsonl -o OUTPUT.jsonl` end to end against the real stack, including a
resume after the CLI is SIGKILLed mid-run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rerankq.bulk import idempotency_key, read_input
from store.db import session_scope
from store.tables import Job
from tests.support.model_card_reference import reference_scores
from tests.support.stack import wait_until

pytestmark = pytest.mark.slow


def write_input(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def request_line(i: int, n_docs: int = 3) -> str:
    return json.dumps({"query": f"bulk query {i}", "documents": [f"bulk document {i}-{d}" for d in range(n_docs)]})


def cli(stack, *args: str) -> list[str]:
    return [sys.executable, "-m", "rerankq", "submit", *args]


def run_cli(stack, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(cli(stack, *args), env=stack.env(RERANKQ_URL=stack.base_url), capture_output=True,
                          text=True, timeout=timeout)


def read_output(path: Path) -> list[dict]:
    """Complete lines only: a SIGKILL may cut the last one short."""
    text = path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def run_id_of(output: Path) -> str:
    return json.loads(output.with_name(output.name + ".state").read_text().splitlines()[0])["run_id"]


def job_ids_by_line(output: Path) -> dict[int, str]:
    return {r["line"]: r["job_id"] for r in read_output(output)}


def jobs_per_key(stack, keys: list[str]) -> dict[str, int]:
    with session_scope(stack.database_url) as session:
        rows = session.execute(select(Job.idempotency_key, func.count()).where(Job.idempotency_key.in_(keys))
                               .group_by(Job.idempotency_key)).all()
    return dict(rows)


def test_bad_lines_are_reported_with_their_number_and_the_rest_scored(stack, tmp_path, tiny_qwen3):
    lines = [request_line(i) for i in range(1, 13)]
    lines[3] = '{"query": "broken json", "documents": ['  # line 4
    lines[8] = json.dumps({"query": "no documents", "documents": []})  # line 9: the schema refuses it
    lines[10] = json.dumps({"query": "x" * 30_000, "documents": ["d"]})  # line 11: the service's limit refuses it
    source = write_input(tmp_path / "in.jsonl", lines[:6] + [""] + lines[6:])  # a blank line 7 is not a request
    output = tmp_path / "out.jsonl"
    done = run_cli(stack, str(source), "-o", str(output), "--batch-size", "4", "--concurrency", "2")
    assert done.returncode == 1, done.stderr
    assert "line 4: not valid JSON" in done.stderr
    assert "line 10: invalid request (documents:" in done.stderr
    assert re.search(r"line 12: refused by the service: .*query", done.stderr)
    assert "9 scored, 0 failed, 3 bad (skipped)" in done.stderr and "3 error lines in the output" in done.stderr
    records = {r["line"]: r for r in read_output(output)}
    assert sorted(records) == [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13]
    assert {n for n, r in records.items() if r.get("skipped")} == {4, 10, 12}
    first = records[1]["result"]
    expected = reference_scores(str(tiny_qwen3), [(None, "bulk query 1", f"bulk document 1-{d}") for d in range(3)])
    assert {r["index"]: round(r["relevance_score"], 5) for r in first["results"]} == \
        {i: round(s, 5) for i, s in enumerate(expected)}
    again = run_cli(stack, str(source), "-o", str(output), "--batch-size", "4", "--concurrency", "2")
    assert again.returncode == 1 and "12 already done before this run; 0 jobs submitted, 0 re-attached" in again.stderr
    assert len(read_output(output)) == 12
    assert re.search(r"12/12 \[[0-9:]+<[0-9:]+, +[0-9.]+(line/s|s/line)\]", done.stderr)  # progress: done, ETA, rate


def test_resume_after_sigkill_submits_no_line_twice(stack, tmp_path):
    n_lines, batch = 60, 2
    source = write_input(tmp_path / "big.jsonl", [request_line(i) for i in range(n_lines)])
    output = tmp_path / "big.out.jsonl"
    args = [str(source), "-o", str(output), "--batch-size", str(batch), "--concurrency", "1"]
    process = subprocess.Popen(cli(stack, *args), env=stack.env(RERANKQ_URL=stack.base_url),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: output.exists() and len(output.read_text().splitlines()) >= 6, 120, "some results")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    written_before = {r["line"] for r in read_output(output)}
    assert 6 <= len(written_before) < n_lines, "the CLI finished before it could be interrupted"

    done = run_cli(stack, *args)
    assert done.returncode == 0, done.stderr
    records = read_output(output)
    assert sorted(r["line"] for r in records) == list(range(1, n_lines + 1))  # each line exactly once
    assert all("result" in r for r in records)
    summary = re.search(r"(\d+) already done before this run; (\d+) jobs submitted, (\d+) re-attached", done.stderr)
    already, submitted, reattached = map(int, summary.groups())
    assert already == len(written_before)
    assert submitted + reattached <= n_lines // batch - len(written_before) // batch

    lines, _ = read_input(source)
    keys = [idempotency_key(run_id_of(output), source, lines[i:i + batch]) for i in range(0, n_lines, batch)]
    assert jobs_per_key(stack, keys) == {key: 1 for key in keys}  # one job per group, across both runs


def test_a_resume_that_lost_its_state_lines_reattaches_by_key(stack, tmp_path):
    """Into the same OUTPUT, the run id (kept in OUTPUT.state) makes the same keys: no second job."""
    source = write_input(tmp_path / "in.jsonl", [request_line(i) for i in range(6)])
    output = tmp_path / "out.jsonl"
    args = [str(source), "-o", str(output), "--batch-size", "2"]
    assert run_cli(stack, *args).returncode == 0
    first_jobs = job_ids_by_line(output)
    state = output.with_name(output.name + ".state")
    header = state.read_text().splitlines()[0]
    state.write_text(header + "\n")  # as if the run died after submitting, before recording its jobs
    output.write_text("")  # ... and before writing any result
    again = run_cli(stack, *args)
    assert again.returncode == 0, again.stderr
    assert job_ids_by_line(output) == first_jobs
    lines, _ = read_input(source)
    keys = [idempotency_key(run_id_of(output), source, lines[i:i + 2]) for i in range(0, 6, 2)]
    assert jobs_per_key(stack, keys) == {key: 1 for key in keys}


def test_a_new_output_scores_the_same_input_afresh(stack, tmp_path):
    """The service keeps idempotency keys forever; a new OUTPUT is a new run with new jobs."""
    source = write_input(tmp_path / "in.jsonl", [request_line(i) for i in range(4)])
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert run_cli(stack, str(source), "-o", str(first), "--batch-size", "2").returncode == 0
    done = run_cli(stack, str(source), "-o", str(second), "--batch-size", "2")
    assert done.returncode == 0, done.stderr
    assert "0 already done before this run; 2 jobs submitted, 0 re-attached" in done.stderr
    assert run_id_of(first) != run_id_of(second)
    old, new = job_ids_by_line(first), job_ids_by_line(second)
    assert sorted(old) == sorted(new) == [1, 2, 3, 4]
    assert set(old.values()).isdisjoint(new.values())
    with session_scope(stack.database_url) as session:
        assert session.scalar(select(func.count()).where(Job.id.in_(set(new.values())))) == 2


def test_an_existing_output_without_state_is_not_overwritten(stack, tmp_path):
    source = write_input(tmp_path / "in.jsonl", [request_line(1)])
    output = tmp_path / "taken.jsonl"
    output.write_text("somebody else's file\n")
    done = run_cli(stack, str(source), "-o", str(output))
    assert done.returncode == 2 and "is not a run to resume" in done.stderr
    assert output.read_text() == "somebody else's file\n"
