"""Long documents in chunk mode: score consecutive token windows, keep the best (as Cohere does).

The default (truncate) scores the document's head only, exactly as the model card does; chunk
mode lets a relevant passage deep in a long document count. Windows are cut from the text at
token boundaries of the document tokenized alone, so each window is an ordinary document and
its score is exactly the model-card score of that text.
"""

from __future__ import annotations

from typing import Any, Sequence

from models.base import Pair


def document_windows(tokenizer: Any, document: str, size: int, max_windows: int) -> list[str]:
    """`document` as consecutive texts of `size` tokens each (at most `max_windows`; a document
    of `size` tokens or fewer is returned whole). A cut never splits a character: each window
    ends at a token's end offset and the next starts where it ended."""
    spans = tokenizer(document, add_special_tokens=False, return_offsets_mapping=True,
                      return_attention_mask=False)["offset_mapping"]
    if len(spans) <= size:
        return [document]
    windows: list[str] = []
    start = 0
    for first in range(0, len(spans), size):
        if len(windows) == max_windows:
            break
        last = min(first + size, len(spans)) - 1
        end = spans[last][1] if last < len(spans) - 1 else len(document)
        windows.append(document[start:end])
        start = end
    return windows


def split_documents(backend: Any, pairs: Sequence[Pair]) -> tuple[list[Pair], list[int]]:
    """The backend's window pairs and owners; one window per pair for backends that cannot split."""
    split = getattr(backend, "split_documents", None)
    if split is None:
        return list(pairs), list(range(len(pairs)))
    return split(pairs)


def max_per_document(scores: Sequence[float], owners: Sequence[int], count: int) -> list[float]:
    """The highest window score of each of `count` documents."""
    best: list[float] = [float("-inf")] * count
    for score, owner in zip(scores, owners):
        if score > best[owner]:
            best[owner] = score
    return best
