"""Through the service: each query's candidates become one rerank request, sent as jobs with the SDK's
bulk runner (`rerankq submit`'s engine): progress bar, bounded concurrency, and resume. The requests
and results of each model live in a state directory; running the same command again re-attaches to
jobs already submitted (idempotency keys) and skips queries already scored."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence

from rerankq.bulk import BulkError, run_bulk
from commands.evaluation.candidates import Candidates, SystemRun


class ServiceRunError(Exception):
    pass


def model_slug(model: Optional[str]) -> str:
    name = model or "default"
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[-60:]
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def write_requests(path: Path, model: Optional[str], candidates: Sequence[Candidates]) -> None:
    """One line per query, the same bytes for the same candidates, so a rerun resumes the same run."""
    lines = []
    for item in candidates:
        request = {"query": item.query, "documents": item.texts}
        if model:
            request["model"] = model
        if item.instruction is not None:
            request["instruction"] = item.instruction
        lines.append(json.dumps(request, ensure_ascii=False, sort_keys=True))
    text = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def read_results(path: Path, candidates: Sequence[Candidates]) -> tuple[dict[str, dict[str, float]], Counter, Counter]:
    scores: dict[str, dict[str, float]] = {}
    names: Counter[str] = Counter()
    revisions: Counter[str] = Counter()
    problems = []
    for text in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(text)
        item = candidates[record["line"] - 1]
        if "result" not in record:
            problems.append(f"query {item.query_id}: {record.get('error')}")
            continue
        result = record["result"]
        scores[item.query_id] = {item.doc_ids[r["index"]]: float(r["relevance_score"]) for r in result["results"]}
        names[result["meta"]["model"]] += 1
        revisions[result["meta"]["model_revision"]] += 1
    if problems:
        raise ServiceRunError(f"{len(problems)} queries failed: " + "; ".join(problems[:5]) +
                              f" (delete {path} and its .state file to score them again)")
    return scores, names, revisions


def score_service(model: Optional[str], candidates: Sequence[Candidates], state_dir: Path, *,
                  url: Optional[str] = None, api_key: Optional[str] = None, batch_size: int = 16,
                  concurrency: int = 4, progress: bool = True, job_timeout: Optional[float] = None) -> SystemRun:
    """Score through the API at `url`; None for `model` means the service's default model."""
    state_dir.mkdir(parents=True, exist_ok=True)
    slug = model_slug(model)
    requests, results = state_dir / f"{slug}.requests.jsonl", state_dir / f"{slug}.results.jsonl"
    write_requests(requests, model, candidates)
    try:
        tally = asyncio.run(run_bulk(requests, results, url=url, api_key=api_key, batch_size=batch_size,
                                     concurrency=concurrency, job_timeout=job_timeout, progress=progress))
    except BulkError as error:
        raise ServiceRunError(f"{error} (the state directory is {state_dir})") from None
    if tally.already_done:
        print(f"rerankq eval: {tally.already_done} of {len(candidates)} queries for {model or 'the default model'} "
              f"were scored by an earlier run (kept in {state_dir}); delete it, or pass another --state, "
              "to score them afresh", file=sys.stderr)
    if tally.unfinished:
        raise ServiceRunError(f"{tally.unfinished} queries not finished ({'; '.join(tally.problems[:3])}); "
                              "run the same command again to resume")
    scores, names, revisions = read_results(results, candidates)
    missing = len(candidates) - len(scores)
    if missing:
        raise ServiceRunError(f"{missing} queries have no result yet; run the same command again to resume")
    name = model or (names.most_common(1)[0][0] if names else "default")
    revision = revisions.most_common(1)[0][0] if revisions else None
    return SystemRun(name, revision, scores)
