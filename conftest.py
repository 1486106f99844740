"""Root pytest configuration: what to collect where optional pieces are missing."""

import importlib.util

collect_ignore_glob = []

# GPU wrappers import cupy at module level; their doctests only run where it is installed.
if importlib.util.find_spec("cupy") is None:
    collect_ignore_glob.append("fastdecay/_gpu/*")
