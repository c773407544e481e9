"""Where a cache's durable tier lives: the ``storage=`` setting, parsed into a :class:`Storage`.

``storage`` is one of

- a local directory (a str or a path), created if need be, or a ``file:`` URL
  (``file:///abs/path`` or ``file:/abs/path``, percent-decoded, as
  ``pyarrow.fs.FileSystem.from_uri`` reads it: no host, no relative path);
- a URL of object storage or a distributed filesystem: ``s3://bucket/prefix``,
  ``gs://bucket/prefix``, ``abfs://container@account.dfs.core.windows.net/prefix``,
  ``hdfs://host/path``, each where pyarrow has the filesystem built in;
- a ``pyarrow.fs.FileSystem`` or an fsspec filesystem, or a ``(filesystem, path)`` pair.

``None`` means the environment variable ``RAYCACHE_STORAGE``, and without it there is no
storage: the cache lives in memory only. A blank string, an unknown scheme, a URL
missing its ``//`` or its bucket (``s3:/bucket``), a ``file:`` URL with a host, or a
local directory that cannot be created or written, or that another user owns, raises
``ValueError`` here, at creation, naming the problem: a mistyped URL never becomes a
local folder.

Files are private by default: the folders the tier makes are ``0700`` and its files
``0600``. ``shared=True`` makes them ``0770`` and ``0660`` (group members may read and
write them), for a shared filesystem whose users are one group.

S3 is reached with pyarrow's ``S3FileSystem``, built in the process that does the I/O
(each shard) from that process's environment. raycache reads the endpoint from
``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL`` (an S3-compatible server such as
MinIO or moto), and the region from ``AWS_REGION``, else ``AWS_DEFAULT_REGION``: pyarrow's
constructor ignores the endpoint variables (only its ``FileSystem.from_uri`` reads them).
Credentials are left to the AWS SDK's default chain: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN``, the shared credentials files, then
instance metadata. The URL's query may set ``endpoint_override``, ``scheme`` and
``region`` instead, as in pyarrow's own URIs. Requests time out in seconds and are tried
twice, so an unreachable S3 costs a shard little time.

>>> import tempfile
>>> local = parse_storage(tempfile.mkdtemp())
>>> local.local_root == local.url
True
>>> parse_storage("s3://bucket/cache").url
's3://bucket/cache'
>>> parse_storage("ftp://host/cache")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: storage URL scheme 'ftp' is not supported; use a directory, or one of: ...
>>> parse_storage("s3:/bucket/cache")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: storage 's3:/bucket/cache' is not a URL: 's3:' must be followed by '//' ...
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from raycache.core.libraries import imported

ENV_VAR = "RAYCACHE_STORAGE"
"""The environment variable that gives the storage of a cache created with ``storage=None``."""

# Each remote scheme, and the pyarrow filesystem class it needs (absent from some builds).
_REMOTE_SCHEMES = {
    "s3": "S3FileSystem",
    "gs": "GcsFileSystem",
    "gcs": "GcsFileSystem",
    "abfs": "AzureFileSystem",
    "abfss": "AzureFileSystem",
    "hdfs": "HadoopFileSystem",
}
# A scheme, as RFC 3986 spells it; "c:" would be a Windows drive, which is not served here.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
# The query parameters of an s3:// URL that raycache reads; pyarrow refuses any other.
_S3_QUERY = frozenset({"endpoint_override", "scheme", "region"})
# A cache must stay responsive when S3 is unreachable: fail in seconds, not minutes.
_S3_TIMEOUTS = {"connect_timeout": 2.0, "request_timeout": 10.0}
_S3_ATTEMPTS = 2
# The environment variables that give each S3 option, the more specific first.
_S3_ENVIRONMENT = {
    "endpoint_override": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
}


@dataclass(frozen=True)
class Storage:
    """A storage location: picklable, so it travels to the shard actors.

    ``url`` is the absolute directory of a local storage, or the URL as given.
    ``filesystem`` and ``path`` hold a filesystem object given by the user; a URL's
    filesystem is instead built in each process that uses it, from that process's
    environment (credentials and endpoints stay out of pickles). ``key`` is the
    derived key that signs its files (see :mod:`~raycache.core.storage.signing`), or
    None; ``shared`` widens the files' permissions to the group.
    """

    url: str
    filesystem: pafs.FileSystem | None = None
    path: str = ""
    key: bytes | None = field(default=None, repr=False)
    shared: bool = False

    @property
    def local_root(self) -> str | None:
        """The local directory of this storage, or None for a remote one."""
        return self.url if self.filesystem is None and "://" not in self.url else None

    @property
    def folder_mode(self) -> int:
        """The permissions of the folders the tier makes: 0700, or 0770 when shared."""
        return 0o770 if self.shared else 0o700

    @property
    def file_mode(self) -> int:
        """The permissions of the files the tier makes: 0600, or 0660 when shared."""
        return 0o660 if self.shared else 0o600

    def remote(self) -> tuple[pafs.FileSystem, str]:
        """Return the filesystem and the root path within it of a remote storage.

        A URL's filesystem is built anew, from this process's environment; building it
        may reach the network (HDFS connects), and raises ``OSError`` if that fails.
        """
        if self.filesystem is not None:
            return self.filesystem, self.path
        return _filesystem_of(self.url)


def parse_storage(storage: object) -> Storage | None:
    """Return the :class:`Storage` that ``storage`` names; None means ``RAYCACHE_STORAGE``."""
    if storage is None:
        return storage_from_env()
    filesystem, path = (
        storage if isinstance(storage, tuple) and len(storage) == 2 else (storage, "")
    )
    if _is_filesystem(filesystem) and isinstance(path, str):
        return _from_filesystem(filesystem, path)
    if isinstance(storage, os.PathLike):
        storage = os.fspath(storage)
    if not isinstance(storage, str):
        raise TypeError(
            "storage must be a directory, a URL, a pyarrow or fsspec filesystem, or a "
            f"(filesystem, path) pair, got {type(storage).__name__}"
        )
    return _from_text(storage)


def storage_from_env(environ: Mapping[str, str] = os.environ) -> Storage | None:
    """Return the storage ``RAYCACHE_STORAGE`` names, or None when it is unset or empty.

    >>> storage_from_env({}) is None
    True
    >>> storage_from_env({"RAYCACHE_STORAGE": "gs://bucket/cache"}).url
    'gs://bucket/cache'
    """
    value = environ.get(ENV_VAR, "").strip()
    return _from_text(value) if value else None


def _from_text(text: str) -> Storage:
    if not text.strip():
        raise ValueError(f"storage {text!r} is blank; give a directory or a URL")
    scheme = _SCHEME.match(text)
    if scheme is None:
        return _local(text)
    name = scheme.group(1).lower()
    if name == "file":
        return _local(_file_url_path(text))
    if not text[scheme.end() :].startswith("//"):
        raise ValueError(
            f"storage {text!r} is not a URL: {scheme.group(0)!r} must be followed by '//' "
            f"(for a local folder of that name, write './{text}')"
        )
    return _remote(text, name)


def _file_url_path(url: str) -> str:
    """Return the local path of a ``file:`` URL, as ``pyarrow.fs.FileSystem.from_uri`` does."""
    try:
        filesystem, path = pafs.FileSystem.from_uri(url)
    except (pa.ArrowException, ValueError) as error:
        raise ValueError(f"storage {url!r} is not a local file URL: {error}") from None
    assert isinstance(filesystem, pafs.LocalFileSystem)
    return str(path)


def _remote(url: str, scheme: str) -> Storage:
    if scheme not in _REMOTE_SCHEMES:
        known = ", ".join(f"{name}://" for name in ("file", *_REMOTE_SCHEMES))
        raise ValueError(
            f"storage URL scheme {scheme!r} is not supported; use a directory, or one of: "
            f"{known}, or pass a pyarrow or fsspec filesystem object"
        )
    if not hasattr(pafs, _REMOTE_SCHEMES[scheme]):
        raise ValueError(
            f"storage {url!r} needs pyarrow.fs.{_REMOTE_SCHEMES[scheme]}, which this "
            "pyarrow was built without"
        )
    parts = urlsplit(url)
    if not parts.netloc:
        raise ValueError(f"storage URL {url!r} names no bucket or host")
    unknown = set(parse_qs(parts.query, keep_blank_values=True)) - _S3_QUERY
    if scheme == "s3" and unknown:
        raise ValueError(
            f"storage URL {url!r} has query parameters raycache does not read: "
            f"{', '.join(sorted(unknown))}; it reads {', '.join(sorted(_S3_QUERY))}"
        )
    if parts.fragment:
        raise ValueError(f"storage URL {url!r} has a fragment ('#...'), which names nothing")
    return Storage(url=url)


def _is_filesystem(candidate: object) -> bool:
    fsspec: Any = imported("fsspec")
    return isinstance(candidate, pafs.FileSystem) or (
        fsspec is not None and isinstance(candidate, fsspec.AbstractFileSystem)
    )


def _from_filesystem(given: Any, path: str) -> Storage:
    if not isinstance(given, pafs.FileSystem):  # fsspec's, which pyarrow can wrap
        if "file" in _protocols(given):
            return _local(path)
        given = pafs.PyFileSystem(pafs.FSSpecHandler(given))
    filesystem: pafs.FileSystem = given
    base = filesystem
    if isinstance(base, pafs.SubTreeFileSystem):
        path = posixpath.join(base.base_path, path)
        base = base.base_fs
    if isinstance(base, pafs.LocalFileSystem):
        return _local(path)
    return Storage(url=f"{filesystem.type_name}:{path}", filesystem=filesystem, path=path)


def _protocols(filesystem: Any) -> tuple[str, ...]:
    protocol = filesystem.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _local(path: str) -> Storage:
    if not path.strip():
        raise ValueError(f"a local storage needs a directory, got {path!r}")
    root = os.path.abspath(os.path.expanduser(path))
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        status = os.stat(root)
    except OSError as error:
        raise ValueError(f"storage directory {root!r} cannot be created: {error}") from None
    if not stat.S_ISDIR(status.st_mode):
        raise ValueError(f"storage {root!r} is not a directory")
    if status.st_uid != os.getuid():
        raise ValueError(
            f"storage directory {root!r} belongs to another user (uid {status.st_uid}); "
            "whoever owns it could replace what the cache reads: use a directory of your own"
        )
    if not os.access(root, os.W_OK | os.X_OK):
        raise ValueError(f"storage directory {root!r} is not writable")
    return Storage(url=root)


def _filesystem_of(url: str) -> tuple[pafs.FileSystem, str]:
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3":
        try:
            filesystem, path = pafs.FileSystem.from_uri(url)
        except pa.ArrowException as error:
            raise OSError(f"storage {url!r} cannot be reached: {error}") from error
        return filesystem, path
    s3 = pafs.S3FileSystem(
        **_s3_options(parts.query, os.environ),
        **_S3_TIMEOUTS,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=_S3_ATTEMPTS),
    )
    return s3, posixpath.join(parts.netloc, unquote(parts.path).strip("/")).rstrip("/")


def _s3_options(query: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """Return the endpoint and region of S3: from the URL's query, else the environment.

    pyarrow's ``S3FileSystem`` leaves ``AWS_ENDPOINT_URL*`` to ``FileSystem.from_uri``,
    which cannot set timeouts, so the variables are read here, as the AWS SDKs read them.

    >>> _s3_options("", {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_REGION": "eu"})
    {'endpoint_override': 'http://127.0.0.1:9000', 'region': 'eu'}
    >>> _s3_options("endpoint_override=minio:9000&scheme=http", {"AWS_ENDPOINT_URL": "x"})
    {'endpoint_override': 'minio:9000', 'scheme': 'http'}
    """
    given = {name: values[-1] for name, values in parse_qs(query).items()}
    options: dict[str, Any] = {
        name: given[name] for name in ("endpoint_override", "scheme", "region") if name in given
    }
    for option, variables in _S3_ENVIRONMENT.items():
        value = next((environ[name] for name in variables if environ.get(name)), None)
        if option not in options and value:
            options[option] = value
    return options
