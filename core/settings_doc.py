"""The settings as a table (README and `rerankq settings`), generated so it cannot drift."""

from __future__ import annotations

from typing import Optional

from core.settings import Settings


def _default(field) -> str:
    value = field.default if field.default_factory is None else field.default_factory()
    if isinstance(value, (list, tuple)):
        value = ",".join(map(str, value))
    elif isinstance(value, dict):  # written as `key=value,...` in the environment
        value = ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def settings_rows(current: Optional[Settings] = None) -> list[tuple[str, str, str]]:
    rows = []
    for name, field in Settings.model_fields.items():
        value = str(getattr(current, name)) if current is not None else _default(field)
        rows.append((f"RERANKQ_{name.upper()}", value, field.description or ""))
    return rows


def markdown_table(current: Optional[Settings] = None) -> str:
    header = "| variable | " + ("value" if current else "default") + " | meaning |\n|---|---|---|\n"
    return header + "\n".join(f"| `{n}` | `{v}` | {d} |" for n, v, d in settings_rows(current))
