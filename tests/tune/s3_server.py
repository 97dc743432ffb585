"""moto's S3 server as tests see it (the fixture that starts it is ``s3`` in conftest.py)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pyarrow.fs as pafs

BUCKET = "bnorder-test"


@dataclass(frozen=True)
class S3Server:
    """moto's S3 on ``endpoint`` (host:port) with the bucket ``BUCKET``."""

    endpoint: str

    def uri(self, prefix: str, bucket: str = BUCKET) -> str:
        """``--storage`` for ``prefix`` in the bucket, as a MinIO user would write it."""
        return f"s3://{bucket}/{prefix}?endpoint_override={self.endpoint}&scheme=http"

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(endpoint_override=self.endpoint, scheme="http")

    def listing(self, prefix: str) -> list[str]:
        """Every object under ``prefix`` in the bucket, as ``bucket/prefix/...`` paths."""
        selector = pafs.FileSelector(f"{BUCKET}/{prefix}", recursive=True, allow_not_found=True)
        return sorted(
            i.path
            for i in self.filesystem().get_file_info(selector)
            if i.type == pafs.FileType.File
        )


def free_port() -> int:
    """A port nothing listens on now (the OS's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
