"""The package's version, in a module of its own so that any module can read it
without importing the package's ``__init__`` (and its import of everything)."""

__version__ = "0.1.0"

# The gradient noise's stream (``fastdecay._cpu.philox``): 1 drew float64 normals two a
# Philox counter (before 2026-12-04), 2 draws float32 normals four a counter. A sweep
# directory records it, so that a resumed noisy sweep never mixes the streams' chunks.
NOISE_STREAM = 2
