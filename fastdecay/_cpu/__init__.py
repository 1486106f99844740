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
"""

import hashlib
import pathlib

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
                    for base in (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator)]
        classes = caching.CacheImpl._locator_classes
    except AttributeError:  # pragma: no cover - a Numba that moved them
        return
    if not any(getattr(c, "__name__", "").startswith("_FastdecayPackage") for c in classes):
        classes[:0] = locators


_install_locator()
