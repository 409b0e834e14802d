"""Parsing RERANKQ_SHADOW_MODELS: `name[:sample_rate],...`.

The rate is the text after the last colon, and only when it parses as a number, so a name that
holds a colon (a local path) still works.
"""

from __future__ import annotations


def parse_shadow_models(value: str) -> dict[str, float]:
    models: dict[str, float] = {}
    for item in (part.strip() for part in value.split(",") if part.strip()):
        name, rate = item, 1.0
        head, sep, tail = item.rpartition(":")
        if sep:
            try:
                rate = float(tail)
            except ValueError:
                head = ""
            if head:
                name = head.strip()
        if not name or not 0.0 <= rate <= 1.0:
            raise ValueError(f"RERANKQ_SHADOW_MODELS: {item!r} is not `name[:sample_rate]` with a rate in 0..1")
        models[name] = rate
    return models
