"""Reference oracles (see fastdecay.reference)."""

__all__ = []
