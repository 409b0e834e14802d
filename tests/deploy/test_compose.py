"""docker-compose.yml, checked without a Docker engine: it parses, each rerankq command is one the
CLI accepts, every RERANKQ_* variable is a real setting with a valid value, ports, volumes,
start order and the GPU reservation fit together, and no secret is written in the repo."""

from __future__ import annotations

import os
import re
import tomllib
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from tests.deploy.settings_check import (assert_cli_accepts, assert_real_settings, compose_value, duration_s,
                                         env_example, interpolated_names)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = ROOT / "docker-compose.yml"
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|(^|_)TOKEN$|AUTH", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_PATH.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_the_stack_has_every_service(services):
    assert {"redis", "postgres", "migrate", "api", "worker", "worker-cpu", "flower", "prometheus",
            "grafana"} <= set(services)


def test_redis_is_a_durable_broker(services):
    command = " ".join(services["redis"]["command"])
    for option in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert option in command


def test_every_rerankq_command_is_a_real_cli_command(services):
    checked = 0
    for name, service in services.items():
        for command in (service.get("command"), (service.get("healthcheck") or {}).get("test")):
            if not command:
                continue
            words = list(command[1:]) if command[0] in ("CMD", "CMD-SHELL") else list(command)
            if words[0] == "rerankq":
                assert_cli_accepts(words[1:], where=f"compose service {name}")
                checked += 1
    assert checked >= 6  # migrate, api, worker, worker-cpu and their health checks


def test_every_rerankq_variable_is_a_real_setting(services):
    for name, service in services.items():
        assert_real_settings(env_of(service), where=f"compose service {name}")
    assert_real_settings(env_example(), where=".env.example")


def test_every_interpolated_variable_is_documented_in_env_example():
    used = interpolated_names(COMPOSE_PATH.read_text())
    assert used <= set(env_example()), f"set in .env.example: {sorted(used - set(env_example()))}"


def test_no_secret_is_written_in_the_repository(services):
    for name, service in services.items():
        for key, value in env_of(service).items():
            if SECRET_WORDS.search(key) or "://" in value:
                assert "${" in value, f"{name}: {key} must come from .env, not the compose file"
    for key, value in env_example().items():
        if SECRET_WORDS.search(key):
            assert value in ("", "change-me", "admin:change-me"), f".env.example: {key} holds a real-looking secret"
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_ports_match_what_each_process_listens_on(services):
    api = services["api"]
    api_port = int(api["command"][api["command"].index("--port") + 1])
    assert [p.split(":")[-1] for p in api["ports"]] == [str(api_port)]
    assert urlparse(api["healthcheck"]["test"][3]).port == api_port
    for name in ("worker", "worker-cpu"):
        worker = services[name]
        port = int(env_of(worker)["RERANKQ_METRICS_PORT"])
        assert worker["expose"] == [str(port)]
        assert urlparse(worker["healthcheck"]["test"][3]).port == port
        assert "ports" not in worker, "a published worker port would stop `--scale worker=N`"
    flower = services["flower"]
    flower_port = next(int(a.split("=")[1]) for a in flower["command"] if a.startswith("--port="))
    assert [p.split(":")[-1] for p in flower["ports"]] == [str(flower_port)]
    assert services["prometheus"]["ports"][0].split(":")[-1] == "9090"
    assert services["grafana"]["ports"][0].split(":")[-1] == "3000"
    datasource = yaml.safe_load((ROOT / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_services_reach_redis_and_postgres_by_service_name(services):
    env = env_of(services["api"])
    assert urlparse(compose_value(env["RERANKQ_REDIS_URL"])).hostname == "redis"
    database = urlparse(compose_value(env["RERANKQ_DATABASE_URL"]))
    assert database.hostname == "postgres" and database.scheme == "postgresql+psycopg"
    assert database.username == services["postgres"]["environment"]["POSTGRES_USER"]
    assert database.path.lstrip("/") == services["postgres"]["environment"]["POSTGRES_DB"]


def test_volumes_are_declared_and_bind_mounts_exist(compose, services):
    declared = set(compose["volumes"])
    used = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared, f"declared but unused: {sorted(declared - used)}"
    for name in ("worker", "worker-cpu"):
        mounts = dict(v.split(":")[:2][::-1] for v in services[name]["volumes"])
        assert mounts[env_of(services[name])["HF_HOME"]] == "model-cache", "weights must land in the cache volume"


def test_start_order_is_enforced(services):
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {"condition": "service_started"} for d in depends}
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            assert condition in CONDITIONS, f"{name}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} to be healthy; it has no check"
            if condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is a one-shot job"
    for name in ("api", "worker", "worker-cpu"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    visiting, done = set(), set()

    def visit(name: str) -> None:
        assert name not in visiting, f"dependency cycle through {name}"
        if name in done:
            return
        visiting.add(name)
        for target in services[name].get("depends_on") or {}:
            visit(target)
        visiting.discard(name)
        done.add(name)

    for name in services:
        visit(name)


def test_gpu_workers_get_one_gpu_each(services):
    worker = services["worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    # Replicas of one service share its reservation: with more than one GPU reserved, each
    # worker must claim its own (RERANKQ_GPU_CLAIM).
    assert device.get("count") == 1 or env_of(worker)["RERANKQ_GPU_CLAIM"] == "true"
    assert "replicas" not in worker.get("deploy", {}), "`--scale worker=N` sets the count"
    assert "container_name" not in worker and "hostname" not in worker, "names must differ per replica"
    deadline = float(env_of(worker)["RERANKQ_CHUNK_DEADLINE_S"])
    assert duration_s(worker["stop_grace_period"]) > deadline


def test_cpu_worker_runs_the_same_model_on_cpu(services):
    cpu, gpu = services["worker-cpu"], services["worker"]
    assert cpu["profiles"] == ["cpu"] and "deploy" not in cpu
    assert env_of(cpu)["RERANKQ_DEVICE"] == "cpu"
    assert env_of(cpu)["RERANKQ_MODEL"] == env_of(gpu)["RERANKQ_MODEL"]
    assert cpu["command"] == gpu["command"]
    assert cpu["build"]["args"]["TORCH_INDEX_URL"].endswith("/cpu")


def test_flower_sees_task_events(services):
    assert env_of(services["worker"])["RERANKQ_WORKER_SEND_EVENTS"] == "true"
    assert env_of(services["api"])["RERANKQ_WORKER_SEND_EVENTS"] == "true"  # task-sent events
    flower = env_of(services["flower"])
    assert compose_value(flower["CELERY_BROKER_URL"]) == compose_value(env_of(services["api"])["RERANKQ_REDIS_URL"])


def test_dockerfiles_build_a_slim_api_and_a_cuda_worker(services):
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {name.split(".")[0] for name in include} | {"client"}  # the SDK is installed first
    for name in ("api", "worker", "worker-cpu", "migrate"):
        build = services[name]["build"]
        dockerfile = ROOT / build["context"] / build["dockerfile"]
        text = dockerfile.read_text()
        for package in packages:
            assert f"COPY {package} ./{package}" in text, f"{dockerfile.name} misses package {package}"
    api = (ROOT / "api/Dockerfile").read_text()
    worker = (ROOT / "workers/Dockerfile").read_text()
    api_steps = [line for line in api.splitlines() if not line.lstrip().startswith("#")]
    assert 'pip install ".[postgres]"' in api and not any("torch" in line or "worker" in line for line in api_steps
                                                          if "pip" in line)
    assert 'pip install ".[worker,postgres]"' in worker and "nvidia/cuda" in worker


@pytest.mark.slow  # a fresh interpreter
def test_the_api_imports_no_torch():
    """The API image has no torch: building the app must not need it."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
            "from core.settings import Settings\nfrom api.main import create_app\n"
            "create_app(Settings(auth_enabled=False))\n"
            "assert 'torch' not in {m for m in sys.modules if sys.modules[m] is not None}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RERANKQ_")}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_checks_catch_mistakes():
    for args in (["worker", "--gpu"], ["wroker"], ["api", "--port", "http"], ["probe"]):
        with pytest.raises(AssertionError):
            assert_cli_accepts(args, where="probe")
    for env in ({"RERANKQ_METRIC_PORT": "9101"}, {"RERANKQ_METRICS_PORT": "70000"}, {"RERANKQ_GPU_CLAIM": "maybe"}):
        with pytest.raises(AssertionError):
            assert_real_settings(env, where="probe")
