"""The package's version, in a module of its own so that any module can read it
without importing the package's ``__init__`` (and its import of everything)."""

__version__ = "0.1.0"
