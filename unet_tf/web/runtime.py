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

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from unet_tf.web.npm import (
    CHUNK,
    DEFAULT_REGISTRY,
    RUNTIME_FILES,
    IntegrityError,
    Pin,
    RuntimeUnavailableError,
    download,
    extract,
    registry_url,
    verify,
)

__all__ = [  # the npm tarballs are fetched, checked and unpacked by unet_tf.web.npm
    "CHUNK",
    "DEFAULT_REGISTRY",
    "LOCK_FILE",
    "NODE_MODULES",
    "PACKAGE_DIR",
    "RUNTIME_FILES",
    "SCOPE",
    "IntegrityError",
    "Pin",
    "RuntimeUnavailableError",
    "cache_dir",
    "cache_root",
    "check_runtime",
    "download",
    "extract",
    "pins",
    "registry_url",
    "runtime_dir",
    "verify",
]

logger = logging.getLogger("unet_tf")

PACKAGE_DIR = Path(__file__).resolve().parent
LOCK_FILE = PACKAGE_DIR / "package-lock.json"
NODE_MODULES = PACKAGE_DIR / "node_modules"  # where `npm ci` in this folder installs
SCOPE = "@litertjs"
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
