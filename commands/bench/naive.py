"""Naive mode: what the popular tutorials do, as the baseline the system must beat.

One pair per forward pass, in request order, through the full causal LM (logits for every
position over the whole vocabulary), then the yes/no columns of the last position: the model
card's code called pair by pair. It runs on the first pairs of a workload only (it is slow by
design); pairs/s is measured on that sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

from commands.bench.workloads import Workload
from models.qwen3 import PREFIX, SUFFIX, format_body


@dataclass
class NaiveRun:
    pairs: int
    seconds: float
    scores: list[float]  # the sampled pairs, in request order
    head_share: float  # share of the time spent beyond the transformer body (the full head, mostly)
    other_load_cores: Optional[float] = None  # CPU cores other processes used meanwhile (hostload)
    max_diff: Optional[float] = None  # |naive - direct| on the sampled pairs

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.seconds if self.seconds else 0.0


def run_naive(model: Any, tokenizer: Any, workload: Workload, max_length: int, sample: int) -> NaiveRun:
    import torch

    pairs = [(job.query, doc) for job in workload.jobs for doc in job.documents][:sample]
    prefix = tokenizer.encode(PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(SUFFIX, add_special_tokens=False)
    no_id, yes_id = tokenizer.convert_tokens_to_ids("no"), tokenizer.convert_tokens_to_ids("yes")
    inputs = []
    for query, doc in pairs:
        body = tokenizer(format_body(None, query, doc), truncation="longest_first", return_attention_mask=False,
                         max_length=max_length - len(prefix) - len(suffix))["input_ids"]
        ids = torch.tensor([prefix + body + suffix], device=model.device)
        inputs.append({"input_ids": ids, "attention_mask": torch.ones_like(ids)})

    scores: list[float] = []
    started = time.perf_counter()
    with torch.no_grad():
        for batch in inputs:
            logits = model(**batch).logits[:, -1, :]
            pair = torch.stack([logits[:, no_id], logits[:, yes_id]], dim=1)
            scores.append(torch.nn.functional.log_softmax(pair.float(), dim=1)[:, 1].exp().item())
    seconds = time.perf_counter() - started

    body_started = time.perf_counter()
    with torch.no_grad():
        for batch in inputs:
            model.model(**batch)
    body_seconds = time.perf_counter() - body_started
    head_share = max(0.0, 1.0 - body_seconds / seconds) if seconds else 0.0
    return NaiveRun(len(pairs), seconds, scores, head_share)
