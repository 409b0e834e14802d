"""Checks shared by the compose and Kubernetes tests: CLI commands parse, RERANKQ_* names are
settings and their values validate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import typer

from commands.cli import app
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "RERANKQ_"
_INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def assert_cli_accepts(args: Sequence[str], where: str) -> None:
    """`rerankq <args>` names a real command and its options parse (nothing is run)."""
    command = typer.main.get_command(app)  # typer ships its own click: duck-type groups and errors
    args = list(args)
    path = ["rerankq"]
    while isinstance(getattr(command, "commands", None), dict):
        assert args, f"{where}: `{' '.join(path)}` needs a subcommand"
        assert args[0] in command.commands, f"{where}: `{' '.join(path)} {args[0]}` is not a command"
        path.append(args[0])
        command, args = command.commands[args[0]], args[1:]
    try:
        command.make_context(" ".join(path), args)
    except Exception as error:  # noqa: BLE001 - click's UsageError / BadParameter
        if not hasattr(error, "format_message"):
            raise
        raise AssertionError(f"{where}: `{' '.join(path + args)}`: {error.format_message()}") from error


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def compose_value(value: str) -> str:
    """A compose value as it would be with .env.example as the .env file."""
    example = env_example()

    def substitute(match: re.Match) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        if example.get(name):
            return example[name]
        if operator in (":-", "-"):
            return argument
        return "placeholder"

    return _INTERPOLATION.sub(substitute, value)


def interpolated_names(text: str) -> set[str]:
    return {match.group(1) for match in _INTERPOLATION.finditer(text)}


def assert_real_settings(env: Mapping[str, str], where: str) -> None:
    """Every RERANKQ_* name is a Settings field and its value is one the field accepts."""
    fields = {name.upper(): name for name in Settings.model_fields}
    for key, raw in env.items():
        if not key.startswith(PREFIX):
            continue
        field = fields.get(key[len(PREFIX):])
        assert field is not None, f"{where}: {key} is not a rerankq setting (core/settings.py)"
        value = compose_value(str(raw))
        if value == "":
            continue  # empty means default (env_ignore_empty)
        try:
            Settings(_env_file=None, **{field: value})
        except Exception as error:  # noqa: BLE001 - pydantic names the problem
            raise AssertionError(f"{where}: {key}={value!r} is invalid: {error}") from error


def duration_s(text: str) -> float:
    """Compose/Kubernetes durations: '90s', '2m', '1m30s', '1h'."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(text))
    assert parts, f"not a duration: {text}"
    return sum(float(number) * units[unit] for number, unit in parts)
