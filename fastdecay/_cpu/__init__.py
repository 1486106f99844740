"""The Numba (CPU) kernels.

Numba's on-disk cache (``cache=True``) keys a kernel on the content of its own
source file only, but the kernels here inline functions from their sibling
modules (the update rules, the schedule formulas, the Philox generator), the
table layout in ``fastdecay/_layout.py`` and the rule codes in
``fastdecay/_rules.py``. Left alone, editing ``rules.py`` would keep every
cached simulation and update kernel on the old rules. So before any kernel is
defined, this package puts a cache locator in front of Numba's own for the
files of this package: the same cache directory Numba would use, with a source
stamp that is the hash of every file a kernel here can inline. Editing any of
them recompiles all the kernels (seconds to a minute, once), never runs
a stale one.

The locator subclasses Numba's (``numba.core.caching``); if a Numba release
moves them, the kernels still cache, with Numba's own per-file stamp.

Where neither ``NUMBA_CACHE_DIR``, nor the package's directory, nor the user's
cache directory (``~/.cache/numba``) can be written (a read-only install run by a
user without a home, a read-only container), Numba refuses every cached kernel
("no locator available"). The last locator here then caches in a directory of
the user's own under the system's temporary directory (made private, 0700; one
that another user owns or can write is not used, a fresh private one is), and
says so once.
"""

import functools
import hashlib
import os
import pathlib
import stat
import tempfile
import threading
import warnings

_HERE = pathlib.Path(__file__).resolve().parent
# what a kernel in this package can inline: its siblings, the table layout and the rule codes
_SOURCES = sorted(_HERE.glob("*.py")) + [_HERE.parent / "_layout.py", _HERE.parent / "_rules.py"]


def _package_stamp():
    digest = hashlib.sha256()
    for path in _SOURCES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.digest()


def _install_locator():
    try:
        from numba.core import caching
    except ImportError:  # pragma: no cover - a Numba without the module
        return

    stamp = _package_stamp()

    class _PackageStamp:
        """Numba's locator for this package's files, stamped by all of them."""

        def get_source_stamp(self):
            return stamp

        @classmethod
        def from_function(cls, py_func, py_file):
            if pathlib.Path(py_file).resolve().parent != _HERE:
                return None
            return super().from_function(py_func, py_file)

    try:
        locators = [type(f"_FastdecayPackage{base.__name__}", (_PackageStamp, base), {})
                    for base in (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator,
                                 caching.UserWideCacheLocator)]
        locators.append(type("_FastdecayPackageTemporaryLocator", (_PackageStamp, _temporary_locator(caching)), {}))
        classes = caching.CacheImpl._locator_classes
    except AttributeError:  # pragma: no cover - a Numba that moved them
        return
    if not any(getattr(c, "__name__", "").startswith("_FastdecayPackage") for c in classes):
        classes[:0] = locators


@functools.cache
def _private_directory():
    """A directory under the system's temporary one that only this user can write: the same
    one from process to process (a warm cache) where it is safe, else a fresh one (one a
    process)."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    path = os.path.join(tempfile.gettempdir(), f"fastdecay-numba-cache-{uid if uid is not None else 'user'}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
        if (stat.S_ISDIR(info.st_mode) and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
                and (uid is None or info.st_uid == uid)):
            return path
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="fastdecay-numba-cache-")  # (0700, this process's own)


def _temporary_locator(caching):
    """Numba's user-wide locator, pointed at ``_private_directory()``: the last resort."""
    told = []

    class TemporaryLocator(caching.UserWideCacheLocator):
        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(_private_directory(), self.get_suitable_cache_subpath(py_file))

        def ensure_cache_path(self):
            os.makedirs(self._cache_path, exist_ok=True)
            tempfile.TemporaryFile(dir=self._cache_path).close()
            if not told:
                told.append(True)
                warnings.warn(
                    "fastdecay: neither NUMBA_CACHE_DIR, the package's directory nor the user's cache directory "
                    f"can be written; compiled kernels are cached in {os.path.dirname(self._cache_path)} "
                    "(set NUMBA_CACHE_DIR to choose the directory)", RuntimeWarning, stacklevel=2)

    return TemporaryLocator


_install_locator()

_COMPILING = threading.Lock()


class CompiledAtFirstCall:
    """``njit(signature, **options)(py_func)``, compiled (or loaded from the on-disk cache) at its
    first call rather than when its module is imported.

    A module's kernels with explicit signatures would otherwise all compile at its import: the
    simulations' planning kernels (rate classes, scaled products, groups, the rates' preparing
    pass) took 33 s of a first ``fastdecay.simulate`` of one schedule on an empty cache (2-core
    Zen 3), which runs none of them but ``shared_step_scalars``. Calls go to the dispatcher; its
    attributes (``signatures``, ``inspect_asm``, ...) are the dispatcher's."""

    def __init__(self, py_func, signature, options):
        self.py_func, self._signature, self._options, self._dispatcher = py_func, signature, options, None
        functools.update_wrapper(self, py_func, updated=())

    def __call__(self, *args):
        dispatcher = self._dispatcher
        if dispatcher is None:
            dispatcher = self.dispatcher()
        return dispatcher(*args)

    def dispatcher(self):
        """The Numba dispatcher, compiled (or loaded) on the first request."""
        with _COMPILING:  # (one compile whichever threads call first)
            if self._dispatcher is None:
                from numba import njit

                self._dispatcher = njit(self._signature, **self._options)(self.py_func)
        return self._dispatcher

    def __getattr__(self, name):
        if name.startswith("_"):  # (not the dispatcher's: an instance being copied has no _dispatcher yet)
            raise AttributeError(name)
        return getattr(self.dispatcher(), name)


def compiled_at_first_call(signature, **options):
    """Decorator: ``CompiledAtFirstCall`` of the function, ``njit(signature, **options)`` at its first call."""
    return lambda py_func: CompiledAtFirstCall(py_func, signature, options)
