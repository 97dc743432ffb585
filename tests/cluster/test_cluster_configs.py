"""The cluster configs in cluster/: Ray's own validation of the launcher configs, the KubeRay
manifests as Ray's KubeRay autoscaler reads them, and the security properties they promise.

Nothing here reaches a cloud or a Kubernetes API server: the checks are the ones `ray up` runs
before it touches a provider, and offline readings of the manifests.
"""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.kuberay.autoscaling_config import (
    _derive_autoscaling_config_from_ray_cr,
)
from ray.autoscaler._private.util import prepare_config, validate_config

from bnorder.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
LAUNCHER = ["aws.yaml", "gcp.yaml"]
COMMAND_KEYS = [
    "initialization_commands",
    "setup_commands",
    "head_setup_commands",
    "worker_setup_commands",
    "head_start_ray_commands",
    "worker_start_ray_commands",
]
RAY_VERSION = metadata.version("ray")


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CLUSTER / name).read_text())


def prepared(name: str) -> dict[str, Any]:
    """The config as `ray up` validates it: defaults merged, then Ray's JSON schema."""
    return prepare_config(load(name))


# ---------------------------------------------------------------- launcher configs (ray up)


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_config_passes_rays_own_validation(name: str) -> None:
    validate_config(prepared(name))


@pytest.mark.parametrize(
    ("break_it", "error"),
    [
        (lambda c: c.pop("provider"), "'provider' is a required property"),
        (lambda c: c.update(setup_command=[]), "Additional properties are not allowed"),
        (lambda c: c["available_node_types"]["gpu"].pop("resources"), "'resources' is a required"),
    ],
    ids=["no-provider", "typo-key", "node-type-without-resources"],
)
def test_rays_validation_catches_a_broken_config(break_it: Any, error: str) -> None:
    config = prepared("aws.yaml")
    break_it(config)
    with pytest.raises(jsonschema.ValidationError, match=error):
        validate_config(config)


def _start(config: dict[str, Any], role: str) -> str:
    return next(c for c in config[f"{role}_start_ray_commands"] if " start " in c)


@pytest.mark.parametrize("name", LAUNCHER)
def test_ray_starts_with_token_auth_and_a_local_only_dashboard(name: str) -> None:
    config = prepared(name)
    for role in ("head", "worker"):
        start = _start(config, role)
        assert re.search(r"export [^;]*\bRAY_AUTH_MODE=token\b[^;]*;.*ray start", start), start
        assert "BNORDER_DATA_ROOT=/home/ray/data" in start
        assert "~/bnorder/.venv/bin/ray start" in start  # the locked Ray, not the image's
    assert "--dashboard-host=127.0.0.1" in _start(config, "head")
    every = " ".join(c for key in COMMAND_KEYS for c in config[key])
    assert "0.0.0.0" not in every
    assert not config["provider"].get("security_group", {}).get("IpPermissions")


@pytest.mark.parametrize("name", LAUNCHER)
def test_head_takes_no_trials_and_gpu_workers_scale_from_zero(name: str) -> None:
    config = prepared(name)
    types = config["available_node_types"]
    head = config["head_node_type"]
    assert types[head]["resources"]["GPU"] == 0
    assert "--num-gpus=0" in _start(config, "head")
    # The head holds the driver and --out: it must not be a node the cloud can take back.
    assert not re.search(r"spot|preemptible", str(types[head]["node_config"]), re.IGNORECASE)
    workers = {k: v for k, v in types.items() if k != head}
    assert workers
    for node_type in workers.values():
        assert node_type["resources"]["GPU"] >= 1
        assert node_type["min_workers"] == 0
        assert 1 <= node_type["max_workers"] <= config["max_workers"]


@pytest.mark.parametrize("name", LAUNCHER)
def test_every_node_installs_the_locked_versions_and_fetches_data(name: str) -> None:
    config = prepared(name)
    assert config["file_mounts"]["/home/ray/bnorder"] == "."
    assert config["file_mounts"]["/home/ray/.ray/auth_token"] == "~/.ray/auth_token"
    for role in ("head", "worker"):  # setup_commands are merged into both by prepare_config
        setup = config[f"{role}_setup_commands"]
        assert any("uv sync --locked --extra cluster" in c for c in setup)
        assert all("--locked" in c for c in setup if "uv sync" in c)
        assert not any(re.search(r"pip install [^|;&]*\bray\b", c) for c in setup)
        assert any("bnorder data fetch cifar10 --data-root /home/ray/data" in c for c in setup)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
@pytest.mark.parametrize("name", LAUNCHER)
def test_every_command_is_valid_bash(name: str) -> None:
    config = load(name)
    for command in (c for key in COMMAND_KEYS for c in config.get(key, [])):
        result = subprocess.run(["bash", "-n"], input=command, capture_output=True, text=True)
        assert result.returncode == 0, f"{command}\n{result.stderr}"


# ---------------------------------------------------------------- KubeRay manifests
# kubeconform is not installed here and would need KubeRay's CRD schemas from the network;
# `kubectl --dry-run=client` needs an API server even for that; no locked package ships the
# ray.io/v1 CRDs. So: a hand-written schema of the fields these manifests rely on (names and
# types from KubeRay's v1 Go types; anything outside it fails here and must be added on purpose),
# plus Ray's own reading of a RayCluster, the one its autoscaler makes inside the head pod.

_OBJ: dict[str, Any] = {"type": "object"}
_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer", "minimum": 0}
_ARR: dict[str, Any] = {"type": "array"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_NUM: dict[str, Any] = {"type": "number"}
_STR_MAP = {"type": "object", "additionalProperties": _STR}
_QUANTITIES = {"type": "object", "additionalProperties": {"type": ["string", "integer"]}}
_CONTAINER = {
    "type": "object",
    "required": ["name", "image"],
    "additionalProperties": False,
    "properties": {
        **dict.fromkeys(["name", "image", "imagePullPolicy", "workingDir"], _STR),
        **dict.fromkeys(["command", "args", "envFrom", "ports", "volumeMounts"], _ARR),
        **dict.fromkeys(["securityContext", "lifecycle", "readinessProbe", "livenessProbe"], _OBJ),
        "resources": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"requests": _QUANTITIES, "limits": _QUANTITIES},
        },
        "env": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {"name": _STR, "value": _STR, "valueFrom": _OBJ},
            },
        },
    },
}
_POD_TEMPLATE = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "metadata": _OBJ,
        "spec": {
            "type": "object",
            "required": ["containers"],
            "properties": {
                "containers": {"type": "array", "minItems": 1, "items": _CONTAINER},
                "serviceAccountName": _STR,
                "volumes": {"type": "array", "items": {"type": "object", "required": ["name"]}},
            },
        },
    },
}
_GROUP = {  # what head and worker groups share
    "rayStartParams": _STR_MAP,  # strings only: `num-gpus: 0` is rejected by the CRD
    "template": _POD_TEMPLATE,
    "resources": _STR_MAP,
    "labels": _STR_MAP,
}
_CLUSTER_SPEC = {
    "type": "object",
    "required": ["headGroupSpec"],
    "additionalProperties": False,
    "properties": {
        "rayVersion": _STR,
        "enableInTreeAutoscaling": _BOOL,
        "suspend": _BOOL,
        "managedBy": _STR,
        "headServiceAnnotations": _STR_MAP,
        "gcsFaultToleranceOptions": _OBJ,
        "autoscalerOptions": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "upscalingMode": {"enum": ["Default", "Aggressive", "Conservative"]},
                "idleTimeoutSeconds": _INT,
                **dict.fromkeys(["image", "imagePullPolicy"], _STR),
                **dict.fromkeys(["resources", "securityContext"], _OBJ),
                **dict.fromkeys(["env", "envFrom", "volumeMounts"], _ARR),
            },
        },
        "authOptions": {
            "type": "object",
            "required": ["mode"],
            "additionalProperties": False,
            "properties": {
                "mode": {"enum": ["disabled", "token"]},
                "secretName": _STR,
                "enableK8sTokenAuth": _BOOL,
            },
        },
        "headGroupSpec": {
            "type": "object",
            "required": ["template", "rayStartParams"],
            "additionalProperties": False,
            "properties": {
                **_GROUP,
                "serviceType": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                "headService": _OBJ,
                "enableIngress": _BOOL,
            },
        },
        "workerGroupSpecs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "groupName",
                    "minReplicas",
                    "maxReplicas",
                    "rayStartParams",
                    "template",
                ],
                "additionalProperties": False,
                "properties": {
                    **_GROUP,
                    "groupName": _STR,
                    **dict.fromkeys(["replicas", "minReplicas", "maxReplicas", "numOfHosts"], _INT),
                    "idleTimeoutSeconds": _INT,
                    "suspend": _BOOL,
                    "scaleStrategy": _OBJ,
                },
            },
        },
    },
}
_JOB_SPEC = {
    "type": "object",
    "required": ["entrypoint"],
    "anyOf": [{"required": ["rayClusterSpec"]}, {"required": ["clusterSelector"]}],
    "additionalProperties": False,
    "properties": {
        "rayClusterSpec": _CLUSTER_SPEC,
        "clusterSelector": _STR_MAP,
        "submissionMode": {"enum": ["K8sJobMode", "HTTPMode", "InteractiveMode"]},
        "deletionPolicy": {"enum": ["DeleteCluster", "DeleteWorkers", "DeleteSelf", "DeleteNone"]},
        **dict.fromkeys(["activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"], _INT),
        **dict.fromkeys(["shutdownAfterJobFinishes", "suspend"], _BOOL),
        **dict.fromkeys(["entrypointNumCpus", "entrypointNumGpus"], _NUM),
        **dict.fromkeys(["entrypoint", "runtimeEnvYAML", "jobId", "entrypointResources"], _STR),
        **dict.fromkeys(["submitterPodTemplate", "submitterConfig"], _OBJ),
        "metadata": _STR_MAP,
        "managedBy": _STR,
    },
}


def _resource(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "ray.io/v1"},
            "kind": {"const": kind},
            "metadata": {"type": "object", "required": ["name"]},
            "spec": spec,
        },
    }


SCHEMAS = {
    "raycluster.yaml": _resource("RayCluster", _CLUSTER_SPEC),
    "rayjob.yaml": _resource("RayJob", _JOB_SPEC),
}


def kuberay(name: str) -> dict[str, Any]:
    return load(f"kuberay/{name}")


def cluster_spec(name: str) -> dict[str, Any]:
    doc = kuberay(name)
    return doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_kuberay_manifest_matches_the_fields_kuberay_defines(name: str) -> None:
    jsonschema.validate(kuberay(name), SCHEMAS[name])


def _int_start_param(doc: dict[str, Any]) -> None:
    doc["spec"]["headGroupSpec"]["rayStartParams"]["num-gpus"] = 0


def _no_max_replicas(doc: dict[str, Any]) -> None:
    del doc["spec"]["workerGroupSpecs"][0]["maxReplicas"]


def _typo_key(doc: dict[str, Any]) -> None:
    doc["spec"]["shutdownAfterJobFinish"] = True


@pytest.mark.parametrize(
    ("name", "break_it", "error"),
    [
        ("raycluster.yaml", _int_start_param, "0 is not of type 'string'"),
        ("raycluster.yaml", _no_max_replicas, "'maxReplicas' is a required property"),
        ("rayjob.yaml", _typo_key, "Additional properties are not allowed"),
    ],
    ids=["int-start-param", "no-max-replicas", "typo-key"],
)
def test_kuberay_schema_catches_a_broken_manifest(name: str, break_it: Any, error: str) -> None:
    doc = kuberay(name)
    break_it(doc)
    with pytest.raises(jsonschema.ValidationError, match=error):
        jsonschema.validate(doc, SCHEMAS[name])


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_rays_autoscaler_reads_cpu_head_and_gpu_workers(name: str) -> None:
    cr = {"metadata": {"name": "bnorder", "namespace": "default"}, "spec": cluster_spec(name)}
    config = _derive_autoscaling_config_from_ray_cr(cr)  # runs validate_config too
    types = config["available_node_types"]
    assert types.pop("headgroup")["resources"]["GPU"] == 0
    assert types
    for node_type in types.values():
        assert node_type["resources"]["GPU"] >= 1
        assert node_type["resources"]["CPU"] >= 2
        assert node_type["min_workers"] == 0 < node_type["max_workers"]


def test_rayjob_runs_on_the_raycluster_spec_and_cleans_up() -> None:
    job = kuberay("rayjob.yaml")["spec"]
    assert job["rayClusterSpec"] == cluster_spec("raycluster.yaml")
    assert job["shutdownAfterJobFinishes"] is True
    assert re.search(r"--out /results/\S+ .*--storage \S+ .*--address auto", job["entrypoint"])


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_kuberay_auth_from_a_secret_and_no_public_service(name: str) -> None:
    spec = cluster_spec(name)
    assert spec["authOptions"] == {"mode": "token", "secretName": "bnorder-ray-auth"}
    head = spec["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"
    assert not head.get("enableIngress")
    templates = [head["template"]] + [w["template"] for w in spec["workerGroupSpecs"]]
    for container in (c for t in templates for c in t["spec"]["containers"]):
        for env in container.get("env", []):
            if re.search(r"TOKEN|SECRET|PASSWORD|KEY", env["name"]):
                assert "secretKeyRef" in env.get("valueFrom", {}), env


def test_pods_use_the_account_and_claim_that_storage_yaml_makes() -> None:
    made = yaml.safe_load_all((CLUSTER / "kuberay" / "storage.yaml").read_text())
    names = {doc["kind"]: doc["metadata"]["name"] for doc in made}
    for name in SCHEMAS:
        spec = cluster_spec(name)
        head = spec["headGroupSpec"]["template"]["spec"]
        for pod in [head] + [w["template"]["spec"] for w in spec["workerGroupSpecs"]]:
            assert pod["serviceAccountName"] == names["ServiceAccount"]
        claims = [
            v["persistentVolumeClaim"] for v in head["volumes"] if "persistentVolumeClaim" in v
        ]
        assert claims == [{"claimName": names["PersistentVolumeClaim"]}]


# ---------------------------------------------------------------- all files

SECRET_PATTERNS = {
    "AWS access key id": r"\bA(?:KIA|SIA)[0-9A-Z]{16}\b",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "service account key": r"\"private_key(?:_id)?\"\s*:",
    # a value given to the variable; naming it (`export AWS_SECRET_ACCESS_KEY=$(...)`, a
    # Secret's env entry) is how the docs say to pass keys
    "AWS secret key": r"(?i)aws_secret_access_key[\"']?\s*[:=]\s*[\"']?"
    r"(?![$<{(])[A-Za-z0-9/+]{16,}",
    "Ray token (token_hex(32))": r"(?<!sha256:)\b[0-9a-f]{64}\b",
    # a literal after `token=`/`secret:`...; `$VAR`, `$(cmd)`, `<placeholder>`, paths are fine
    "assigned literal": r"(?i)(?:token|secret|password|passwd|api_key)[\"']?\s*[:=]\s*[\"']?"
    r"(?![$<{(~/])[^\s\"']{8,}",
}


def find_secrets(text: str) -> list[str]:
    return [what for what, pattern in SECRET_PATTERNS.items() if re.search(pattern, text)]


@pytest.mark.parametrize(
    "text",
    [
        "AKIA" + "Q" * 16,
        "-----BEGIN " + "RSA PRIVATE KEY-----",
        '{"private_key": "x"}',
        secrets.token_hex(32),
        "auth_token: " + "s3cr3t" * 3,
        "--from-literal=auth_token=" + "hunter22hunter22",
        "AWS_SECRET_ACCESS_KEY=" + "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key: " + "Zm9vYmFyYmF6cXV4cXV1eA",
    ],
)
def test_secret_scan_flags_a_planted_secret(text: str) -> None:
    assert find_secrets(f"x\n{text}\ny")


@pytest.mark.parametrize(
    "text",
    [
        '--from-literal=auth_token="$RAY_AUTH_TOKEN"',
        "export RAY_AUTH_TOKEN=$(openssl rand -hex 32)",
        "RAY_AUTH_MODE=token",
        "/home/ray/.ray/auth_token: ~/.ray/auth_token",
        "secretName: bnorder-ray-auth",
        "export AWS_SECRET_ACCESS_KEY=$(aws secretsmanager get-secret-value --secret-id x)",
        "- name: AWS_SECRET_ACCESS_KEY",
        "as `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` in the environment",
    ],
)
def test_secret_scan_passes_references(text: str) -> None:
    assert find_secrets(text) == []


def cluster_files() -> list[Path]:
    return sorted(p for p in CLUSTER.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", cluster_files(), ids=lambda p: str(p.relative_to(CLUSTER)))
def test_no_secret_in_cluster_files(path: Path) -> None:
    assert find_secrets(path.read_text()) == []


def test_images_and_kuberay_use_the_locked_ray() -> None:
    images = [load(n)["docker"][k] for n in LAUNCHER for k in ("head_image", "worker_image")]
    images.append(re.search(r"ARG BASE=(\S+)", (CLUSTER / "Dockerfile").read_text())[1])
    for image in images:
        assert image.startswith(f"rayproject/ray:{RAY_VERSION}-"), image
    for name in SCHEMAS:
        assert cluster_spec(name)["rayVersion"] == RAY_VERSION


def _bnorder_commands() -> list[str]:
    """Every `bnorder ...` command line the README and the configs tell someone to run."""
    texts = [(CLUSTER / "README.md").read_text().replace("\\\n", " ")]
    texts += [c for n in LAUNCHER for key in COMMAND_KEYS for c in load(n).get(key, [])]
    texts.append(kuberay("rayjob.yaml")["spec"]["entrypoint"])
    found = re.findall(r"\bbnorder (?:sweep|data|report) [^'`\n#]*", "\n".join(texts))
    return sorted({c.strip() for c in found})


@pytest.mark.parametrize("command", _bnorder_commands(), ids=lambda c: " ".join(c.split()))
def test_documented_bnorder_commands_parse(command: str, capsys: pytest.CaptureFixture) -> None:
    try:
        build_parser().parse_args(shlex.split(command)[1:])
    except SystemExit:
        pytest.fail(f"{command}: {capsys.readouterr().err}")


def test_paths_in_the_readme_exist() -> None:
    for path in re.findall(r"\bcluster/[\w./-]*\w", (CLUSTER / "README.md").read_text()):
        assert (REPO / path).exists(), path
