"""The README's promises that can rot: the two commands exist and every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_documents_every_setting_with_its_default():
    from core.settings_doc import settings_rows

    for name, default, _description in settings_rows():
        assert f"| `{name}` | `{default}` |" in README, f"{name} missing from the README settings table"


def test_readme_mentions_no_setting_that_does_not_exist():
    known = {f"RERANKQ_{name.upper()}" for name in Settings.model_fields}
    mentioned = set(re.findall(r"RERANKQ_[A-Z0-9_]+[A-Z0-9]", README))
    # SDK/CLI variables; the RERANKQ_FAULT_* family; the test suite's own switch
    client_side = {"RERANKQ_URL", "RERANKQ_API_KEY", "RERANKQ_FAULT", "RERANKQ_TESTS_REQUIRE_ALL"}
    assert sorted(mentioned - known - client_side) == []


def test_the_two_commands_exist():
    makefile = (ROOT / "Makefile").read_text()
    assert "make up" in README and "make test" in README
    assert re.search(r"^up:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
