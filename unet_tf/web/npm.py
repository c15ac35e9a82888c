"""LiteRT.js as npm tarballs: the pinned packages, their download, check and unpacking.

:mod:`unet_tf.web.runtime` decides where the runtime comes from; this module fetches a
pinned tarball from the npm registry (:func:`download`), checks it against its integrity
(:func:`verify`) and unpacks the files the page needs (:func:`extract`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

logger = logging.getLogger("unet_tf")

DEFAULT_REGISTRY = "https://registry.npmjs.org/"
# LiteRT.js files the page needs, relative to node_modules/@litertjs (the first part names the
# package): the ES module, its one dependency, and the WebAssembly builds it picks from
# (relaxed-SIMD single-threaded, threaded when the page is cross-origin isolated, and "compat"
# for browsers without relaxed SIMD). The JSPI build (for WebNN / WebGPU partitioning) is left
# out: the page runs on WASM.
RUNTIME_FILES = {
    "core/dist/index.js": "litert/core/index.js",
    "core/package.json": "litert/core/package.json",
    "wasm-utils/dist/index.js": "litert/wasm-utils/index.js",
    **{f"core/wasm/litert_wasm{v}_internal.{ext}": f"litert/wasm/litert_wasm{v}_internal.{ext}"
       for v in ("", "_threaded", "_compat") for ext in ("js", "wasm")},
}
CHUNK = 1 << 16


class RuntimeUnavailableError(FileNotFoundError):
    """LiteRT.js is on none of the places :func:`runtime_dir` looks, and the download failed."""


class IntegrityError(ValueError):
    """A LiteRT.js tarball is not the one package-lock.json pins (or holds unsafe paths)."""


@dataclass(frozen=True)
class Pin:
    """One npm package of the runtime as package-lock.json pins it."""

    name: str  # "@litertjs/core"
    version: str  # "2.5.3"
    integrity: str  # "sha512-<base64 digest>", as npm records it

    @property
    def short(self) -> str:
        """The name without its scope, also the runtime folder's subfolder: "core"."""
        return self.name.rsplit("/", 1)[-1]

    @property
    def tarball(self) -> str:
        """The tarball's file name in the registry: "core-2.5.3.tgz"."""
        return f"{self.short}-{self.version}.tgz"

    def url(self, registry: str | None = None) -> str:
        """The tarball's address in ``registry`` (default: $npm_config_registry or npmjs)."""
        registry = registry or registry_url()
        return f"{registry.rstrip('/')}/{self.name}/-/{self.tarball}"


def registry_url() -> str:
    """The npm registry: ``$npm_config_registry`` (as npm reads it), else registry.npmjs.org."""
    return (os.environ.get("npm_config_registry") or os.environ.get("NPM_CONFIG_REGISTRY")
            or DEFAULT_REGISTRY)


def verify(path: str | Path, integrity: str) -> None:
    """Check a file against an npm integrity string ("sha512-<base64>").

    Raises:
        IntegrityError: the file's digest differs (the message gives both).

    Examples:
        >>> verify("core-2.5.3.tgz", pins()["core"].integrity)  # doctest: +SKIP
    """
    algorithm, _, expected = integrity.partition("-")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    found = base64.b64encode(digest.digest()).decode()
    if found != expected:
        raise IntegrityError(
            f"{path} is not the file package-lock.json pins: its {algorithm} is {found}, "
            f"expected {expected}. Download it again (a proxy or mirror may have altered it)"
        )


def extract(tarballs: dict[str, Path], dest: str | Path) -> Path:
    """Unpack the :data:`RUNTIME_FILES` of verified npm tarballs into a new folder ``dest``.

    Args:
        tarballs: short package name ("core", "wasm-utils") -> its .tgz, already verified.
        dest: the folder to create; written beside itself first and renamed into place, so it
            exists only complete. If another process created it meanwhile, theirs is kept.

    Raises:
        IntegrityError: a tarball holds an absolute or ``..`` path, or a needed file is not a
            regular file in it; nothing is written.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        for short, path in tarballs.items():
            wanted = {f"package/{src.split('/', 1)[1]}": tmp / src for src in RUNTIME_FILES
                      if src.split("/", 1)[0] == short}
            with tarfile.open(path, "r:gz") as archive:
                members = archive.getmembers()
                for member in members:
                    parts = PurePosixPath(member.name).parts
                    if member.name.startswith(("/", "\\")) or ".." in parts:
                        raise IntegrityError(
                            f"{path} holds an unsafe path {member.name!r}; refusing to unpack it"
                        )
                by_name = {m.name: m for m in members}
                for name, target in wanted.items():
                    member = by_name.get(name)
                    if member is None or not member.isfile():
                        raise IntegrityError(f"{path} has no regular file {name}")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.extractfile(member) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
        tmp.chmod(0o755)
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.is_dir():  # not a lost race with another process: a real failure
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def download(pin: Pin, folder: str | Path, registry: str | None = None) -> Path:
    """Download one pinned tarball into ``folder`` and verify it; return its path.

    Logs the size and progress (every quarter, at most every few seconds) on the ``unet_tf``
    logger. An unverified file is deleted, never returned.

    Raises:
        RuntimeUnavailableError: the registry cannot be reached (the message names the URL).
        IntegrityError: the file differs from package-lock.json's pin.
    """
    url = pin.url(registry)
    path = Path(folder) / pin.tarball
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            logger.info("LiteRT.js: downloading %s (%s)", url, _size(total))
            done, shown, last = 0, 0, time.monotonic()
            while block := response.read(CHUNK):
                out.write(block)
                done += len(block)
                quarter = 4 * done // total if total else 0
                if quarter > shown and (quarter == 4 or time.monotonic() - last > 2):
                    logger.info("LiteRT.js: %s %s of %s", pin.tarball, _size(done),
                                _size(total))
                    shown, last = quarter, time.monotonic()
    except OSError as exc:  # URLError, timeouts and refused connections are OSErrors
        path.unlink(missing_ok=True)
        raise RuntimeUnavailableError(f"could not download {url} ({exc})") from exc
    try:
        verify(path, pin.integrity)
    except IntegrityError as exc:
        path.unlink(missing_ok=True)
        raise IntegrityError(f"{url}: {exc}") from None
    return path


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.0f} kB"
