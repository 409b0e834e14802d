"""deploy/k8s, checked without a cluster: manifests parse, commands and probes are real CLI
commands, env names are settings, ports and names line up, workers get one GPU each, and KEDA
watches the very lists the workers consume, scales down slowly, and the README's commands point
at the kustomization."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from core.settings import Settings
from tests.deploy.settings_check import assert_cli_accepts, assert_real_settings, duration_s
from core.direct_queue import direct_list
from core.queue import INTERACTIVE, queue_name, queues_for

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
    redis_triggers = [t for t in scaled["triggers"] if t["type"] == "redis"]
    assert {t["type"] for t in scaled["triggers"]} <= {"redis", "prometheus"}
    lists = [t["metadata"]["listName"] for t in redis_triggers]
    assert sorted(lists) == sorted([*queues_for(model), direct_list(queue_name(model, INTERACTIVE))])
    secrets = {name: doc["stringData"] for (kind, name), doc in manifests.items() if kind == "Secret"}
    for trigger in redis_triggers:
        auth = manifests[("TriggerAuthentication", trigger["authenticationRef"]["name"])]
        params = {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]}
        assert {"address", "password"} <= params
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["key"] in secrets[ref["name"]], ref
        assert int(trigger["metadata"]["listLength"]) >= 1


def test_scale_down_waits_out_short_dips(manifests):
    """cooldownPeriod and activation thresholds act only on scaling to and from zero; with a warm
    minimum the HPA's scale-down behaviour is what keeps models loaded through a short dip."""
    scaled = manifests[("ScaledObject", "rerankq-worker")]["spec"]
    scale_down = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert 300 <= scale_down["stabilizationWindowSeconds"] <= 3600  # the HPA rejects more than an hour
    policies = scale_down["policies"]
    assert policies and all(p["type"] in ("Pods", "Percent") and p["value"] >= 1 and p["periodSeconds"] >= 60
                            for p in policies)
    assert any(p["type"] == "Pods" and p["value"] == 1 for p in policies), "remove GPU pods one at a time"
    if scaled["minReplicaCount"] >= 1:
        assert "cooldownPeriod" not in scaled, "cooldownPeriod does nothing unless minReplicaCount is 0"
        for trigger in scaled["triggers"]:
            assert not any(key.startswith("activation") for key in trigger["metadata"]), (
                f"{trigger['type']} trigger: activation thresholds do nothing unless minReplicaCount is 0")


def commented_triggers(text: str) -> list[dict]:
    """Triggers left commented out in a manifest (`# - type: ...` and the `#   ...` lines under it)."""
    found, block = [], None
    for line in text.splitlines() + [""]:
        stripped = line.strip()
        if re.fullmatch(r"# - type: \S+", stripped):
            if block:
                found.append(block)
            block = [stripped[2:]]
        elif block is not None and stripped.startswith("#   "):
            block.append(stripped[2:])
        elif block is not None:
            found.append(block)
            block = None
    return [yaml.safe_load("\n".join(lines))[0] for lines in found]


def test_the_commented_prometheus_trigger_counts_waiting_and_in_flight_chunks(manifests):
    pytest.importorskip("promql_parser", reason="needs promql-parser (pip install 'rerankq[dev]')")
    from tests.deploy.exported import exported_series
    from tests.deploy.test_monitoring import check_query

    (trigger,) = [t for t in commented_triggers((K8S / "keda.yaml").read_text()) if t["type"] == "prometheus"]
    query = trigger["metadata"]["query"]
    names = check_query(query, exported_series(), "keda.yaml prometheus trigger")
    assert {"rerankq_queue_depth", "rerankq_queue_unacked_messages"} <= names
    settings = config(manifests)
    model = settings.get("RERANKQ_MODEL_NAME") or settings["RERANKQ_MODEL"]
    assert f'model="{model}"' in query, "the depth is this model's queues only"
    concurrency = int(settings.get("RERANKQ_WORKER_CONCURRENCY", Settings.model_fields["worker_concurrency"].default))
    assert int(trigger["metadata"]["threshold"]) == concurrency, "one worker per RERANKQ_WORKER_CONCURRENCY chunks"
    assert trigger["metadata"]["serverAddress"].startswith("http")


def readme_blocks(heading: str) -> list[str]:
    """The bash blocks of one README section (up to the next heading of the same or a higher
    level; `#` lines inside code blocks are shell comments, not headings)."""
    level = len(heading.split(" ")[0])
    blocks: list[str] = []
    inside, fence, block = False, None, []
    for line in (ROOT / "README.md").read_text().splitlines():
        stripped = line.strip()
        if fence is None and re.match(r"#{1,6} ", line):
            if inside and len(line.split(" ")[0]) <= level:
                break
            inside = inside or line == heading
        elif stripped.startswith("```"):
            if fence is None:
                fence, block = stripped[3:], []
            else:
                if inside and fence == "bash":
                    blocks.append(textwrap.dedent("\n".join(block)))
                fence = None
        elif fence is not None:
            block.append(line)
    assert inside, f"README has no section {heading!r}"
    return blocks


def kustomize_paths(block: str) -> list[tuple[str, Path]]:
    """(command, directory) for every kustomize use in a shell block, following `cd` the way the
    shell does: a `cd` inside `( ... )` ends with the parentheses, one outside them lasts."""
    found = []
    cwd = ROOT
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        stack, words = [], []
        for token in [*lexer, ";"]:
            if token in ("&&", "||", "|", ";", "(", ")"):
                if words[:1] == ["cd"]:
                    cwd = (cwd / words[1]).resolve()
                elif words[:3] == ["kubectl", "apply", "-k"]:
                    found.append((" ".join(words), (cwd / words[3]).resolve()))
                elif words[:2] == ["kubectl", "kustomize"]:
                    found.append((" ".join(words), (cwd / words[2]).resolve()))
                elif words[:2] == ["kustomize", "edit"]:
                    found.append((" ".join(words), cwd))
                words = []
                if token == "(":
                    stack.append(cwd)
                elif token == ")":
                    cwd = stack.pop()
            else:
                words.append(token)
    return found


def test_readme_kubernetes_commands_point_at_the_kustomization():
    uses = [use for heading in ("## Kubernetes", "### Upgrading") for block in readme_blocks(heading)
            for use in kustomize_paths(block)]
    assert any(command.startswith("kubectl apply -k") for command, _ in uses)
    assert any(command.startswith("kustomize edit") for command, _ in uses)
    for command, directory in uses:
        assert directory == K8S.resolve(), f"README: `{command}` runs on {directory}, not deploy/k8s"


def test_the_readme_path_checker_follows_cd():
    broken = "cd deploy/k8s && kustomize edit set image a=b\nkubectl apply -k deploy/k8s\n"
    assert [d for _, d in kustomize_paths(broken)] == [K8S.resolve(), (K8S / "deploy/k8s").resolve()]
    fixed = "(cd deploy/k8s && kustomize edit set image a=b)\nkubectl apply -k deploy/k8s\n"
    assert [d for _, d in kustomize_paths(fixed)] == [K8S.resolve(), K8S.resolve()]


def test_kustomize_builds():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize deploy/k8s` not run")
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc]
    assert kinds.count("Deployment") == 2 and "ScaledObject" in kinds
