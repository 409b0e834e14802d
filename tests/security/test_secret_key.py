"""The dashboard signing secret: placeholders and short values are refused by every API process with
access control on, several processes need one shared value, and `rerankq up` makes its own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from commands.local_stack import local_secret_key
from commands.redis_server import free_port
from core.secret_key_check import WeakSecretKey, secret_key_problem
from core.settings import Settings

GOOD = "kq8F2u0Zr9yWb3Lx7Tq1Vm5Hn6Pd4Sg0Je2Ca8Ro1Y"


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize("secret", ["change-me", "CHANGE_ME", "change-me-" + "x" * 40, "secret", "a" * 64])
def test_placeholders_are_refused_whatever_their_length(secret):
    problem = secret_key_problem(settings(secret_key=secret))
    assert problem.startswith("RERANKQ_SECRET_KEY is a known placeholder")


def test_a_short_secret_is_refused_and_the_limit_named():
    problem = secret_key_problem(settings(secret_key="kq8F2u0Zr9yWb3Lx7Tq1"))
    assert problem.startswith("RERANKQ_SECRET_KEY is 20 bytes, shorter than 32")


def test_good_empty_and_open_access_secrets_pass():
    assert secret_key_problem(settings(secret_key=GOOD)) is None
    assert secret_key_problem(settings(secret_key="")) is None  # one process: a random secret of its own
    assert secret_key_problem(settings(secret_key="change-me", auth_enabled=False)) is None  # no sessions to forge


def test_several_processes_need_one_shared_secret():
    assert "2 API processes would each pick their own" in secret_key_problem(settings(secret_key=""), processes=2)
    assert secret_key_problem(settings(secret_key=GOOD), processes=4) is None


def test_the_app_refuses_to_build_with_a_placeholder():
    from api.main import create_app

    with pytest.raises(WeakSecretKey, match="known placeholder"):
        create_app(settings(secret_key="change-me"))


def _api(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RERANKQ_")}
    base.update(RERANKQ_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}", RERANKQ_REDIS_URL="redis://127.0.0.1:1/0",
                RERANKQ_AUTH_ENABLED="true", **env)
    return subprocess.run([sys.executable, "-m", "rerankq", "api", "--port", str(free_port()), *args], env=base,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


def test_an_api_process_with_the_shipped_placeholder_does_not_start(tmp_path):
    done = _api(tmp_path, RERANKQ_SECRET_KEY="change-me")
    assert done.returncode != 0
    assert "RERANKQ_SECRET_KEY is a known placeholder" in done.stderr + done.stdout


def test_api_workers_with_an_empty_secret_are_refused(tmp_path):
    done = _api(tmp_path, "--workers", "2")
    assert done.returncode == 2
    assert "RERANKQ_SECRET_KEY is empty and 2 API processes" in done.stderr


def test_rerankq_up_generates_its_own_secret_instead_of_a_placeholder():
    made = local_secret_key(settings(secret_key="change-me"))
    assert len(made) >= 32 and secret_key_problem(settings(secret_key=made)) is None
    assert local_secret_key(settings(secret_key="")) != local_secret_key(settings(secret_key=""))
    assert local_secret_key(settings(secret_key=GOOD)) == GOOD
