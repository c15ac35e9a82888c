"""Where the page's LiteRT.js runtime comes from: a folder you name, ``npm ci``, or a download.

The browser page runs the .tflite with LiteRT.js, two npm packages (@litertjs/core and its one
dependency @litertjs/wasm-utils) pinned, version and sha512 integrity, by this package's
``package-lock.json``. Their WebAssembly files are too large for the wheel, so
:func:`runtime_dir` finds a copy, in this order:

1. ``source``, when given: a ``node_modules`` folder (or its ``@litertjs`` folder), or a
   folder holding the two npm tarballs (``core-2.5.3.tgz`` and ``wasm-utils-2.5.3.tgz``, as
   the registry names them, or ``litertjs-core-2.5.3.tgz`` ... as ``npm pack`` does): the way
   for a machine without network;
2. ``unet_tf/web/node_modules``, where ``npm ci`` in this package's folder installs it;
3. the per-user cache, ``litertjs-VERSION`` in ``$UNET_TF_CACHE``, else in
   ``$XDG_CACHE_HOME/unet_tf``, else in ``~/.cache/unet_tf``;
4. otherwise it downloads the two tarballs (about 12 MB) from the npm registry
   (``$npm_config_registry``, default https://registry.npmjs.org/), checks each against the
   integrity in package-lock.json and unpacks the files the page needs into the cache.

Nothing is ever unpacked from a tarball that failed its integrity check.

Examples:
    >>> from unet_tf.web.runtime import runtime_dir
    >>> runtime_dir()  # doctest: +SKIP
    PosixPath('/home/me/.cache/unet_tf/litertjs-2.5.3')
    >>> runtime_dir("vendor")  # core-2.5.3.tgz, wasm-utils-2.5.3.tgz  # doctest: +SKIP
    PosixPath('/home/me/.cache/unet_tf/litertjs-2.5.3')
"""

from __future__ import annotations

import base64
import hashlib
import json
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

PACKAGE_DIR = Path(__file__).resolve().parent
LOCK_FILE = PACKAGE_DIR / "package-lock.json"
NODE_MODULES = PACKAGE_DIR / "node_modules"  # where `npm ci` in this folder installs
SCOPE = "@litertjs"
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


def pins(lock: str | Path | None = None) -> dict[str, Pin]:
    """The runtime's packages, by short name, from package-lock.json (default: this package's).

    Examples:
        >>> pins()["core"].tarball
        'core-2.5.3.tgz'
    """
    lock = Path(lock) if lock is not None else LOCK_FILE
    packages = json.loads(lock.read_text())["packages"]
    found = {}
    for key, entry in packages.items():
        name = key.removeprefix("node_modules/")
        if name.startswith(f"{SCOPE}/"):
            found[name.rsplit("/", 1)[-1]] = Pin(name, entry["version"], entry["integrity"])
    needed = sorted({src.split("/", 1)[0] for src in RUNTIME_FILES})
    if sorted(found) != needed:
        raise ValueError(f"{lock} pins {sorted(found)} of {SCOPE}; the page needs {needed}")
    return found


def cache_root() -> Path:
    """The per-user cache: $UNET_TF_CACHE, else $XDG_CACHE_HOME/unet_tf, else ~/.cache/unet_tf."""
    if os.environ.get("UNET_TF_CACHE"):
        return Path(os.environ["UNET_TF_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "unet_tf"


def cache_dir() -> Path:
    """The runtime's folder in the cache: ``litertjs-VERSION`` (it may not exist yet)."""
    return cache_root() / f"litertjs-{pins()['core'].version}"


def check_runtime(root: str | Path, version: str) -> list[str]:
    """What is wrong with a runtime folder (laid out like node_modules/@litertjs); [] if fine."""
    root = Path(root)
    missing = [src for src in RUNTIME_FILES if not (root / src).is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        return [f"{root} lacks {missing[0]}{more}"]
    found = json.loads((root / "core" / "package.json").read_text()).get("version")
    if found != version:
        return [f"{root / 'core'} holds {SCOPE}/core {found}, package-lock.json pins {version}"]
    return []


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


def _find_tarball(folder: Path, pin: Pin) -> Path | None:
    for name in (pin.tarball, f"{SCOPE.lstrip('@')}-{pin.tarball}"):
        if (folder / name).is_file():
            return folder / name
    return None


def _from_source(source: Path) -> Path:
    """The runtime from a folder the user named (node_modules, @litertjs or tarballs)."""
    pinned = pins()
    version = pinned["core"].version
    if not source.exists():
        raise FileNotFoundError(
            f"{source} does not exist; pass a node_modules folder or a folder holding "
            f"{' and '.join(p.tarball for p in pinned.values())}"
        )
    folder = source.parent if source.is_file() else source
    for root in (folder / SCOPE, folder):
        if (root / "core").is_dir():
            problems = check_runtime(root, version)
            if problems:
                raise FileNotFoundError(
                    f"LiteRT.js in {root} is not usable: {problems[0]}; pass a node_modules "
                    "folder where `npm ci` installed unet_tf/web/package-lock.json, or a folder "
                    f"holding {' and '.join(p.tarball for p in pinned.values())}"
                )
            return root
    tarballs = {short: _find_tarball(folder, pin) for short, pin in pinned.items()}
    if not all(tarballs.values()):
        names = " and ".join(p.tarball for p in pinned.values())
        raise FileNotFoundError(
            f"{source} holds neither {SCOPE}/core (a node_modules folder) nor the npm tarballs "
            f"{names}; download them from {pinned['core'].url()} and "
            f"{pinned['wasm-utils'].url()} into that folder"
        )
    for short, path in tarballs.items():
        verify(path, pinned[short].integrity)
    dest = cache_dir()
    if check_runtime(dest, version):
        shutil.rmtree(dest, ignore_errors=True)  # an incomplete copy (emptied by hand?)
        extract(tarballs, dest)
        logger.info("LiteRT.js %s unpacked from %s into %s", version, folder, dest)
    return dest


def runtime_dir(source: str | Path | None = None) -> Path:
    """A folder holding the pinned LiteRT.js (laid out like node_modules/@litertjs), checked.

    Looks in ``source``, then ``unet_tf/web/node_modules``, then the per-user cache, and
    downloads into the cache when none holds it (see the module docstring).

    Args:
        source: a ``node_modules`` folder, its ``@litertjs`` folder, or a folder with the two
            npm tarballs (``core-VERSION.tgz``, ``wasm-utils-VERSION.tgz``); when given, the
            runtime must come from there (tarballs are verified and unpacked into the cache).

    Returns:
        The folder; :data:`RUNTIME_FILES` names the files the page copies from it.

    Raises:
        FileNotFoundError: ``source`` lacks the runtime, or (:class:`RuntimeUnavailableError`)
            no local copy exists and the download failed; the message says how to bring the
            two tarballs in by hand.
        IntegrityError: a tarball differs from the pin in package-lock.json.

    Examples:
        >>> runtime_dir().name  # doctest: +SKIP
        'litertjs-2.5.3'
    """
    if source is not None:
        return _from_source(Path(source).expanduser())
    pinned = pins()
    version = pinned["core"].version
    npm = NODE_MODULES / SCOPE
    if npm.is_dir():
        problems = check_runtime(npm, version)
        if not problems:
            return npm
        logger.warning("LiteRT.js: ignoring %s (%s); run `npm ci` in %s again", npm,
                       problems[0], PACKAGE_DIR)
    dest = cache_dir()
    if not check_runtime(dest, version):
        return dest
    shutil.rmtree(dest, ignore_errors=True)  # an incomplete copy (emptied by hand?)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".litertjs-download.", dir=dest.parent))
    try:
        try:
            tarballs = {short: download(pin, work) for short, pin in pinned.items()}
        except RuntimeUnavailableError as exc:
            raise RuntimeUnavailableError(
                f"LiteRT.js {version} is not on this machine and {exc}. Without network: "
                f"download {' and '.join(p.url(DEFAULT_REGISTRY) for p in pinned.values())} "
                f"on another machine (or run `npm pack {SCOPE}/core@{version} "
                f"{SCOPE}/wasm-utils@{version}` there), copy the two .tgz files into a "
                "folder here and pass it: `unet-tf export ... --web-runtime FOLDER` or "
                "write_web(..., runtime=FOLDER)"
            ) from exc.__cause__
        extract(tarballs, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("LiteRT.js %s cached in %s", version, dest)
    return dest
