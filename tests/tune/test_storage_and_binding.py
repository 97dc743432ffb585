"""Where a sweep's Ray state goes (``--storage``, remembered for ``--resume``), the packing
factor recorded per trial, and a local Ray that listens on 127.0.0.1 only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from bnorder.errors import ConfigError
from bnorder.tune.recorder import packing
from bnorder.tune.runner import STORAGE_FILE, resolve_storage


def test_storage_defaults_to_out_and_resolves_paths(tmp_path: Path) -> None:
    assert resolve_storage(tmp_path, None, None, resume=False) == str(tmp_path / "ray")
    assert resolve_storage(tmp_path, "rel/dir", None, resume=False) == str(
        Path("rel/dir").resolve()
    )
    assert resolve_storage(tmp_path, "s3://b/x/", "gs://c/y/", resume=False) == "gs://c/y"


def test_unsupported_storage_scheme_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_storage(tmp_path, None, "http://host/x", resume=False)
    message = str(info.value)
    assert message.startswith("--storage: is not a storage Ray can write to: 'http://host/x'")
    assert "s3://..." in message
    assert "\n" not in message


def test_credentials_in_the_storage_uri_are_refused_and_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_storage(tmp_path, None, "s3://AKIAKEY:s3cr3t@bucket/x", resume=False)
    message = str(info.value)
    assert "must not hold credentials" in message
    assert "s3cr3t" not in message
    assert "AKIAKEY" not in message
    assert not (tmp_path / STORAGE_FILE).exists()


def test_resume_uses_the_recorded_storage_and_refuses_another(tmp_path: Path) -> None:
    (tmp_path / STORAGE_FILE).write_text("s3://bucket/first\n")
    assert resolve_storage(tmp_path, None, None, resume=True) == "s3://bucket/first"
    assert resolve_storage(tmp_path, None, "s3://bucket/first/", resume=True) == "s3://bucket/first"
    with pytest.raises(ConfigError, match="differs from the storage this sweep started with"):
        resolve_storage(tmp_path, None, "s3://bucket/other", resume=True)


@pytest.mark.parametrize(("gpu", "k"), [(0.0, None), (0.25, 4), (0.5, 2), (1.0, 1), (2.0, 1)])
def test_packing_factor(gpu: float, k: int | None) -> None:
    assert packing(gpu) == k


LISTENERS = """
from bnorder.tune.runner import init_ray
init_ray(None, num_cpus=1)
import ray
node = ray.nodes()[0]
gcs_port = int(ray.get_runtime_context().gcs_address.rsplit(":", 1)[1])
ports = {gcs_port, node["NodeManagerPort"], node["ObjectManagerPort"]}
print(node["NodeManagerAddress"], sorted(ports))
ray.shutdown()
"""
# /proc/net/tcp{,6}: local address as hex "IP:PORT", state 0A = LISTEN
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def _listeners(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            ip, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(ip)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net")
def test_local_ray_listens_on_loopback_only() -> None:
    # the script keeps its Ray up until the listeners have been read from /proc
    proc = subprocess.Popen(
        [sys.executable, "-c", LISTENERS.replace("ray.shutdown()", "input(); ray.shutdown()")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        node_ip, ports = proc.stdout.readline().strip().split(" ", 1)
        listening = {p: _listeners(p) for p in ast.literal_eval(ports)}
    finally:
        proc.communicate("\n", timeout=120)
    assert node_ip == "127.0.0.1"
    assert all(listening.values()), listening  # each port has a listener
    assert set().union(*listening.values()) <= LOOPBACK, listening
