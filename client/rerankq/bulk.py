"""`rerankq submit INPUT.jsonl -o OUTPUT.jsonl`: score a file of rerank requests as async jobs.

Each input line is one rerank request. Lines are grouped by position (lines 1..B, B+1..2B, ...)
into jobs, submitted with a bounded number in flight, and every result is appended to OUTPUT as
soon as its job finishes: `{"line": N, "job_id": ..., "result": {...}}`, or `{"line": N,
"error": ...}` for a bad line or a failed job. Output order is completion order; `line` says where
each belongs.

Resuming: OUTPUT itself records which lines are finished (a line cut short by a crash is
dropped), and OUTPUT.state records a run id (made when OUTPUT is first written) and the job of
every group submitted. Each job carries an idempotency key derived from that run id, the input
path, its line numbers and their text, so a rerun into the same OUTPUT re-attaches to jobs
already submitted (even ones the state file missed) and never creates a second job for a line,
while a run into a new OUTPUT scores the input afresh (the service keeps idempotency keys
forever, so keys without the run id would hand it the old jobs, old failures included).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, TextIO

from pydantic import ValidationError
from tqdm import tqdm

from rerankq.errors import InvalidRequest, JobFailed, RerankError
from rerankq.sdk import AsyncRerankClient
from rerankq.schemas import RerankRequest

STATE_SUFFIX = ".state"
_REQUEST_FIELD = re.compile(r"^requests\.(\d+)(?:\.|$)")


class BulkError(Exception):
    """The run cannot start (inconsistent state, unreadable input); the message says what to do."""


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, as editors show it
    text: str
    request: Optional[dict] = None
    error: Optional[str] = None


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    bad: int = 0
    unfinished: int = 0
    already_done: int = 0
    reattached: int = 0
    submitted: int = 0
    problems: list[str] = field(default_factory=list)


def parse_line(number: int, text: str) -> Line:
    """A request line, or the reason it is not one (validated with the service's own schema)."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        return Line(number, text, error=f"not valid JSON ({error.msg} at column {error.colno})")
    if not isinstance(body, dict):
        return Line(number, text, error="not a JSON object")
    try:
        RerankRequest.model_validate(body)
    except ValidationError as error:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors())
        return Line(number, text, error=f"invalid request ({reasons})")
    return Line(number, text, request=body)


def read_input(path: Path) -> tuple[list[Line], str]:
    """Every non-blank line, parsed, and the file's SHA-256 (a resumed run must read the same file)."""
    raw = path.read_bytes()
    lines = [parse_line(i, text) for i, text in enumerate(raw.decode("utf-8").splitlines(), start=1) if text.strip()]
    return lines, hashlib.sha256(raw).hexdigest()


def idempotency_key(run_id: str, input_path: Path, lines: list[Line]) -> str:
    digest = hashlib.sha256(f"{run_id}\n{input_path.resolve()}".encode())
    for line in lines:
        digest.update(f"\n{line.number}:{line.text}".encode())
    return f"rerankq-bulk-{digest.hexdigest()}"


def finished_lines(output: Path) -> set[int]:
    """Line numbers OUTPUT already holds; a last line cut short by a crash is removed."""
    if not output.exists():
        return set()
    data = output.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        output.write_bytes(complete)
    done = set()
    for text in complete.decode("utf-8").splitlines():
        try:
            done.add(int(json.loads(text)["line"]))
        except (ValueError, KeyError, TypeError):
            continue
    return done


class State:
    """OUTPUT.state: a header naming the input and this output's run id, then one JSON line per
    job submitted."""

    def __init__(self, path: Path, header: dict) -> None:
        self.path = path
        self.header = header
        self.jobs: dict[str, str] = {}  # idempotency key -> job id
        lines = [json.loads(t) for t in path.read_text().splitlines() if t.strip().startswith("{")] \
            if path.exists() else []
        if lines:
            first = dict(lines[0])
            self.run_id = first.pop("run_id", None)
            if first != header or not self.run_id:
                raise BulkError(f"{path} was written for another input or --batch-size ({lines[0]}); rerun with "
                                "the same input and options, or delete the output and its .state file")
            self.jobs = {r["key"]: r["job_id"] for r in lines[1:] if "key" in r}
        else:  # a new output (or a state file a crash left empty): a new run
            self.run_id = uuid.uuid4().hex
            path.write_text(json.dumps({**header, "run_id": self.run_id}) + "\n")

    def record(self, key: str, job_id: str, lines: list[int]) -> None:
        self.jobs[key] = job_id
        with self.path.open("a") as handle:
            handle.write(json.dumps({"key": key, "job_id": job_id, "lines": lines}) + "\n")


class Run:
    def __init__(self, client: AsyncRerankClient, input_path: Path, out: TextIO, state: State, done: set[int],
                 bar: tqdm, tally: Tally, concurrency: int, job_timeout: Optional[float]) -> None:
        self.client = client
        self.input_path = input_path
        self.out = out
        self.state = state
        self.done = done
        self.bar = bar
        self.tally = tally
        self.slots = asyncio.Semaphore(concurrency)
        self.job_timeout = job_timeout

    def write(self, records: list[dict]) -> None:
        for record in records:
            self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.done.add(record["line"])
        self.out.flush()
        self.bar.update(len(records))

    def bad(self, line: Line, reason: str) -> None:
        message = f"line {line.number}: {reason}"
        self.tally.bad += 1
        self.tally.problems.append(message)
        tqdm.write(f"skipped {message}", file=sys.stderr)
        self.write([{"line": line.number, "error": reason, "skipped": True}])

    async def group(self, lines: list[Line]) -> None:
        async with self.slots:
            while lines:
                lines = await self._job(lines)

    async def _job(self, lines: list[Line]) -> list[Line]:
        """Run (or re-attach to) the job for `lines` and write the lines OUTPUT lacks; returns lines
        to submit again when the service refused others among them."""
        key = idempotency_key(self.state.run_id, self.input_path, lines)
        job_id = self.state.jobs.get(key)
        try:
            if job_id is not None:
                self.tally.reattached += 1
            else:
                job_id = (await self.client.submit([_request(ln) for ln in lines], idempotency_key=key)).id
                self.state.record(key, job_id, [ln.number for ln in lines])
                self.tally.submitted += 1
            view = await self.client.wait(job_id, timeout=self.job_timeout)
        except InvalidRequest as error:
            return self._refused(lines, error)
        except JobFailed as error:
            records: list[dict[str, Any]] = [{"line": ln.number, "job_id": job_id, "error": str(error)}
                                             for ln in self._open(lines)]
            self.tally.failed += len(records)
            self.tally.problems.append(f"lines {lines[0].number}-{lines[-1].number}: {error}")
            self.write(records)
            return []
        except RerankError as error:  # overloaded, unreachable, timed out: left for a rerun
            self.tally.unfinished += len(self._open(lines))
            self.tally.problems.append(f"lines {lines[0].number}-{lines[-1].number} not finished: {error}")
            return []
        by_line = {ln.number: r.model_dump(mode="json", exclude_none=True) for ln, r in zip(lines, view.results or [])}
        records = [{"line": ln.number, "job_id": job_id, "result": by_line[ln.number]} for ln in self._open(lines)]
        self.tally.ok += len(records)
        self.write(records)
        return []

    def _open(self, lines: list[Line]) -> list[Line]:
        return [ln for ln in lines if ln.number not in self.done]

    def _refused(self, lines: list[Line], error: InvalidRequest) -> list[Line]:
        """Mark the lines a 422 names as bad and hand back the rest; all of them when it names none."""
        named: dict[int, str] = {}
        for detail in error.details:
            match = _REQUEST_FIELD.match(detail.get("field") or "")
            if match and int(match.group(1)) < len(lines):
                named.setdefault(int(match.group(1)), detail.get("message") or str(error))
        if not named:
            for line in self._open(lines):
                self.bad(line, f"refused by the service: {error}")
            return []
        for index, message in named.items():
            if lines[index].number not in self.done:
                self.bad(lines[index], f"refused by the service: {message}")
        return [ln for i, ln in enumerate(lines) if i not in named]


def _request(line: Line) -> dict:
    assert line.request is not None, "plan_groups groups only the lines that parsed into a request"
    return line.request


def plan_groups(lines: list[Line], batch_size: int, done: set[int]) -> list[list[Line]]:
    """Groups by position, so the same input always makes the same groups (and keys); a group
    keeps its finished lines, so a half-written group re-attaches to its job instead of
    submitting the rest anew."""
    groups: dict[int, list[Line]] = {}
    for line in lines:
        if line.request is not None:
            groups.setdefault((line.number - 1) // batch_size, []).append(line)
    return [g for _, g in sorted(groups.items()) if any(ln.number not in done for ln in g)]


async def run_bulk(input_path: Path, output: Path, *, url: Optional[str] = None, api_key: Optional[str] = None,
                   batch_size: int = 32, concurrency: int = 4, job_timeout: Optional[float] = None,
                   progress: bool = True, client: Optional[AsyncRerankClient] = None) -> Tally:
    lines, digest = read_input(input_path)
    state_path = output.with_name(output.name + STATE_SUFFIX)
    if output.exists() and not state_path.exists():
        raise BulkError(f"{output} exists but {state_path.name} does not, so it is not a run to resume: "
                        "choose another output path or delete it")
    state = State(state_path, {"input": str(input_path.resolve()), "sha256": digest, "batch_size": batch_size})
    done = finished_lines(output)
    tally = Tally(already_done=len({ln.number for ln in lines} & done))
    client = client or AsyncRerankClient(url, api_key, max_retries=8)
    bar = tqdm(total=len(lines), initial=tally.already_done, unit="line", desc="rerankq", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    try:
        with output.open("a", encoding="utf-8") as out:
            run = Run(client, input_path, out, state, done, bar, tally, concurrency, job_timeout)
            for line in lines:
                if line.error is not None and line.number not in done:
                    run.bad(line, line.error)
            groups = plan_groups(lines, batch_size, done)
            await asyncio.gather(*(run.group(g) for g in groups))
    finally:
        bar.close()
        await client.aclose()
    return tally


def error_lines(output: Path) -> int:
    """Lines of OUTPUT that hold an error instead of a result (this run's and earlier runs')."""
    return sum("error" in json.loads(text) for text in output.read_text(encoding="utf-8").splitlines())


def summary(tally: Tally, total_lines: int, errors: int) -> str:
    parts = [f"{tally.ok} scored", f"{tally.failed} failed", f"{tally.bad} bad (skipped)"]
    if tally.unfinished:
        parts.append(f"{tally.unfinished} not finished (rerun the same command to resume)")
    return (f"{total_lines} lines: {', '.join(parts)}; {tally.already_done} already done before this run; "
            f"{tally.submitted} jobs submitted, {tally.reattached} re-attached; {errors} error lines in the output")


def bulk_main(input_path: Path, output: Path, **options: Any) -> int:
    """The command's body: run, print a summary to stderr; exit 0 only when every line has a result."""
    try:
        tally = asyncio.run(run_bulk(input_path, output, **options))
    except BulkError as error:
        print(f"rerankq submit: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rerankq submit: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    total = len(read_input(input_path)[0])
    errors = error_lines(output)
    for problem in tally.problems[:20]:
        print(f"  {problem}", file=sys.stderr)
    if len(tally.problems) > 20:
        print(f"  ... and {len(tally.problems) - 20} more (see the \"error\" lines of {output})", file=sys.stderr)
    print(f"rerankq submit: {summary(tally, total, errors)}", file=sys.stderr)
    return 0 if errors == 0 and tally.unfinished == 0 else 1
