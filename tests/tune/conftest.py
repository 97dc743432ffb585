"""A real S3 endpoint on this machine for ``--storage s3://`` tests: moto's server mode, on
127.0.0.1, with one bucket. Missing moto skips those tests, except in CI (CI=true), where
``uv sync --locked`` installs it with the dev group: there it must fail, not skip."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from s3_server import BUCKET, S3Server, free_port

# Before any Ray starts (the session's, a subprocess driver's, the cluster keeper's nodes): Ray's
# workers inherit them and read checkpoints from the bucket with them. Dummy values, and always
# these: no test may reach a real account, whatever the developer's shell holds.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",  # no lookups of a cloud instance's role or region
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_SESSION_TOKEN", None)


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto_server on a free port; waits until it answers, creates the bucket, stops it after."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("moto[server] missing in CI: it is in the dev group (uv sync --locked)")
        pytest.skip("moto[server] is not installed (uv sync installs the dev group)")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with log.open("w") as sink:  # every request is logged: a pipe nobody reads would fill
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        server = S3Server(f"127.0.0.1:{port}")
        _wait_until_up(proc, f"http://{server.endpoint}/", log)
        _create_bucket(server)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_until_up(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # S3's ListBuckets
                return
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None:
                pytest.fail(f"moto_server exited ({proc.returncode}):\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"moto_server did not answer on {url}:\n{log.read_text()}")
            time.sleep(0.2)


def _create_bucket(server: S3Server) -> None:
    pafs.S3FileSystem(
        endpoint_override=server.endpoint, scheme="http", allow_bucket_creation=True
    ).create_dir(BUCKET)
