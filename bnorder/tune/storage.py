"""Where Ray keeps a sweep's experiment state and checkpoints (``--storage``), opened once.

A local or NFS path goes to Ray as it is. An object store URI is parsed by pyarrow into a
filesystem and a path on it, which go to Ray as ``storage_filesystem`` and ``storage_path``: Ray
would otherwise join experiment names onto the URI, which breaks on a query string such as
``s3://bucket/bnorder?endpoint_override=minio.internal:9000&scheme=http`` (S3-compatible stores:
MinIO, Ceph, R2). The folder is listed once, with short timeouts, before anything is written: a
store that cannot be reached or a bucket that does not exist is one line, in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bnorder.errors import ConfigError

__all__ = ["RayStorage", "open_storage"]

# The probe's patience: a healthy store lists a folder in well under a second; one retry covers
# a throttled request. pyarrow's defaults retry for long on a store that does not answer.
PROBE_CONNECT_S = 5.0
PROBE_REQUEST_S = 10.0
PROBE_ATTEMPTS = 2
DETAIL_CHARS = 200  # of pyarrow's message, enough for the AWS error code and its reason


@dataclass(frozen=True)
class RayStorage:
    """``--storage`` as given (recorded for ``--resume``) and what Ray receives for it."""

    uri: str
    path: str  # Ray's storage_path: the local path, or the path on ``filesystem``
    filesystem: Any = None  # a pyarrow FileSystem; None for a local or NFS path

    def experiment(self, name: str) -> str:
        """The path of experiment ``name``, on ``filesystem`` when there is one."""
        return f"{self.path}/{name}"

    def show(self, name: str) -> str:
        """``s3://bucket/prefix/name``: where experiment ``name`` is, for people to read."""
        if self.filesystem is None:
            return self.experiment(name)
        return f"{self.uri.split('://', 1)[0]}://{self.experiment(name)}"


def open_storage(uri: str) -> RayStorage:
    """Parse ``uri`` (a path or an object store URI) and check that its folder can be listed.

    Args:
        uri: a local or NFS path, or e.g. ``s3://bucket/prefix`` with pyarrow's query options
            (``endpoint_override``, ``scheme``, ``region``). Credentials come from the
            environment (``AWS_ACCESS_KEY_ID``, ...), an instance profile or workload identity.
    Returns:
        The storage, ready for ``tune.RunConfig``, ``Tuner.can_restore`` and ``Tuner.restore``.
    Raises:
        ConfigError: the URI does not parse, its store does not answer, its bucket does not
            exist, or listing it is refused.

    Example:
        >>> open_storage("/mnt/shared/ray")
        RayStorage(uri='/mnt/shared/ray', path='/mnt/shared/ray', filesystem=None)
    """
    if "://" not in uri:
        return RayStorage(uri, uri)
    import pyarrow.fs as pafs

    try:
        filesystem, path = pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError, NotImplementedError) as exc:
        raise ConfigError("--storage", uri, "cannot be opened:", hint=_detail(exc)) from exc
    path = path.rstrip("/")
    try:
        _patient_less(filesystem).get_file_info(pafs.FileSelector(path))
    except FileNotFoundError as exc:
        if "/" not in path:  # a bucket's root lists even when empty
            raise _no_bucket(uri, path) from exc
        # a new prefix in an existing bucket: Ray creates it
    except OSError as exc:
        if "NO_SUCH_BUCKET" in str(exc):
            raise _no_bucket(uri, path.split("/", 1)[0]) from exc
        raise ConfigError("--storage", uri, "cannot be listed:", hint=_detail(exc)) from exc
    return RayStorage(uri, path, filesystem)


def _no_bucket(uri: str, bucket: str) -> ConfigError:
    return ConfigError(
        "--storage",
        uri,
        f"names a bucket that does not exist ({bucket}):",
        hint="create it first; bnorder never creates buckets",
    )


def _patient_less(filesystem: Any) -> Any:
    """A copy of ``filesystem`` that gives up within seconds (Ray keeps the original)."""
    import pyarrow.fs as pafs

    # __reduce__ is how the filesystem pickles (to Ray's workers): every option it was made with
    if isinstance(filesystem, pafs.S3FileSystem):
        options = filesystem.__reduce__()[1][0]
        return pafs.S3FileSystem(
            **{**options, "connect_timeout": PROBE_CONNECT_S, "request_timeout": PROBE_REQUEST_S},
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=PROBE_ATTEMPTS),
        )
    if isinstance(filesystem, pafs.GcsFileSystem):
        options = filesystem.__reduce__()[1][0]
        limit = timedelta(seconds=PROBE_CONNECT_S + PROBE_REQUEST_S)
        return pafs.GcsFileSystem(**{**options, "retry_time_limit": limit})
    return filesystem


def _detail(exc: BaseException) -> str:
    """pyarrow's reason, on one line, from the AWS error code on, without the request ID."""
    text = " ".join(str(exc).split()).split(" (Request ID:", 1)[0]
    text = text[max(text.find("AWS Error "), 0) :]  # not "When listing objects under key ..."
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 3] + "..."
