"""``import fastdecay`` stays light: it never imports torch or cupy (unless the caller
passes their arrays), and the Numba kernels load on first use, not at import."""

import json
import subprocess
import sys
import textwrap


def run_fresh(code):
    """Run ``code`` in a fresh interpreter; it prints a JSON object as its last line."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_fastdecay_imports_neither_torch_cupy_nor_numba():
    got = run_fresh(
        """
        import json, sys
        import fastdecay
        print(json.dumps({m: m in sys.modules for m in ("torch", "cupy", "numba", "numpy")}))
        """
    )
    assert got == {"torch": False, "cupy": False, "numba": False, "numpy": True}


def test_evaluating_schedules_on_numpy_imports_neither_torch_nor_cupy():
    got = run_fresh(
        """
        import json, sys
        import numpy as np
        import fastdecay as fd
        s = fd.warmup(fd.cosine(np.array([0.1, 0.2]), 100), 10)
        s(5), s.table(50), s.table(np.arange(7)), fd.half_life(fd.step(0.1, 0.5, 10))
        fd.match_endpoint(fd.step(0.1, 0.5, 10), 30)
        print(json.dumps({m: m in sys.modules for m in ("torch", "cupy", "numba")}))
        """
    )
    assert got == {"torch": False, "cupy": False, "numba": True}


def test_fastdecay_torch_without_torch_says_how_to_install_it():
    got = run_fresh(
        """
        import json, sys
        sys.modules["torch"] = None  # as if torch were not installed
        try:
            import fastdecay.torch
        except ImportError as err:
            print(json.dumps(str(err)))
        """
    )
    assert got.startswith("fastdecay.torch needs torch, which is not installed: pip install 'fastdecay[torch]'")
