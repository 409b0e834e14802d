"""deploy/k8s, checked without a cluster: manifests parse, commands and probes are real CLI
commands, env names are settings, ports and names line up, workers get one GPU each, and KEDA
watches the very lists the workers consume."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.settings_check import assert_cli_accepts, assert_real_settings, duration_s
from workers.queue import queues_for

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def load(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict]:
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load(path.name):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path.name
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def container(manifests, name: str) -> dict:
    (only,) = manifests[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
    return only


def config(manifests) -> dict[str, str]:
    return manifests[("ConfigMap", "rerankq-config")]["data"]


def test_every_resource_is_there_and_listed_in_the_kustomization(manifests):
    kinds = {kind for kind, _name in manifests}
    assert {"Deployment", "Service", "ScaledObject", "TriggerAuthentication", "ConfigMap", "Secret", "Job"} <= kinds
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    assert "secret.example.yaml" not in kustomization["resources"], "real secrets are created by hand"
    listed = {doc["metadata"]["name"] for r in kustomization["resources"] for doc in load(r)}
    assert {"rerankq-api", "rerankq-worker", "rerankq-config", "rerankq-migrate"} <= listed


def test_commands_and_probes_are_real_cli_commands(manifests):
    checked = 0
    for (kind, name), doc in manifests.items():
        template = doc.get("spec", {}).get("template")
        if not template:
            continue
        for spec in template["spec"]["containers"]:
            commands = [spec.get("command")] + [spec.get(p, {}).get("exec", {}).get("command")
                                                for p in ("readinessProbe", "livenessProbe", "startupProbe")]
            for command in filter(None, commands):
                assert command[0] == "rerankq", f"{kind}/{name}: {command}"
                assert_cli_accepts(command[1:], where=f"{kind}/{name}")
                checked += 1
    assert checked >= 4


def test_every_env_name_is_a_real_setting(manifests):
    assert_real_settings(config(manifests), where="ConfigMap rerankq-config")
    assert_real_settings(manifests[("Secret", "rerankq-secrets")]["stringData"], where="Secret rerankq-secrets")
    for (kind, name), doc in manifests.items():
        template = doc.get("spec", {}).get("template")
        for spec in (template["spec"]["containers"] if template else []):
            env = {item["name"]: item.get("value", "") for item in spec.get("env", [])}
            assert_real_settings(env, where=f"{kind}/{name}")
            sources = {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in spec.get("envFrom", [])}
            assert sources == {"rerankq-config", "rerankq-secrets"}, f"{kind}/{name} reads {sources}"


def test_secrets_are_examples_only(manifests):
    for (kind, name), doc in manifests.items():
        if kind == "Secret":
            for key, value in doc["stringData"].items():
                assert "change-me" in value or value in ("", "redis:6379"), f"{name}.{key} looks real"


def test_api_ports_line_up(manifests):
    api = container(manifests, "rerankq-api")
    port = int(api["command"][api["command"].index("--port") + 1])
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert ports == {"http": port}
    for probe in ("readinessProbe", "livenessProbe"):
        assert api[probe]["httpGet"]["port"] in ports
    service = manifests[("Service", "rerankq-api")]
    assert service["spec"]["ports"][0]["targetPort"] in ports
    labels = manifests[("Deployment", "rerankq-api")]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    annotations = manifests[("Deployment", "rerankq-api")]["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == port


def test_workers_get_one_gpu_and_time_to_finish(manifests):
    worker = container(manifests, "rerankq-worker")
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    metrics_port = int(config(manifests)["RERANKQ_METRICS_PORT"])
    assert {p["name"]: p["containerPort"] for p in worker["ports"]} == {"metrics": metrics_port}
    assert str(metrics_port) in worker["readinessProbe"]["exec"]["command"][2]
    pod = manifests[("Deployment", "rerankq-worker")]["spec"]["template"]
    assert int(pod["metadata"]["annotations"]["prometheus.io/port"]) == metrics_port
    deadline_s = duration_s(f"{config(manifests)['RERANKQ_CHUNK_DEADLINE_S']}s")
    assert pod["spec"]["terminationGracePeriodSeconds"] > deadline_s
    mounts = {m["name"]: m["mountPath"] for m in worker["volumeMounts"]}
    hf_home = {e["name"]: e["value"] for e in worker["env"]}["HF_HOME"]
    assert mounts["model-cache"] == hf_home
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    claim = volumes["model-cache"]["persistentVolumeClaim"]["claimName"]
    assert "ReadWriteMany" in manifests[("PersistentVolumeClaim", claim)]["spec"]["accessModes"]  # shared cache
    assert "RERANKQ_GPU_CLAIM" not in config(manifests), "each pod sees only its own GPU"


def test_keda_scales_workers_on_the_lists_they_consume(manifests):
    scaled = manifests[("ScaledObject", "rerankq-worker")]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "rerankq-worker"
    assert scaled["minReplicaCount"] >= 1, "GPU pods start slowly: keep one warm"
    settings = config(manifests)
    model = settings.get("RERANKQ_MODEL_NAME") or settings["RERANKQ_MODEL"]
    lists = [t["metadata"]["listName"] for t in scaled["triggers"]]
    assert sorted(lists) == sorted(queues_for(model))
    secrets = {name: doc["stringData"] for (kind, name), doc in manifests.items() if kind == "Secret"}
    for trigger in scaled["triggers"]:
        assert trigger["type"] == "redis"
        auth = manifests[("TriggerAuthentication", trigger["authenticationRef"]["name"])]
        params = {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]}
        assert {"address", "password"} <= params
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["key"] in secrets[ref["name"]], ref
        assert int(trigger["metadata"]["listLength"]) >= 1


def test_kustomize_builds():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize deploy/k8s` not run")
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc]
    assert kinds.count("Deployment") == 2 and "ScaledObject" in kinds
