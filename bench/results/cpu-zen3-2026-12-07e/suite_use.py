"""Which of the kernels `fastdecay compile` wrote did the suite load, and which did it compile itself.

    python -m fastdecay compile --jobs 2; date +%s > t1; pytest -q -n 2; python suite_use.py t1

Numba reads a kernel's .nbc file only to load that kernel (from Python, or to link it into a kernel
being compiled); on a relatime mount the first read after the write moves the access time past the
modification time. A callee linked into a kernel loaded whole is not read: only entry points count.
"""
import collections
import glob
import os
import sys

t1 = float(open(sys.argv[1]).read())
used, unused, written = collections.Counter(), collections.Counter(), []
for p in glob.glob("fastdecay/**/__pycache__/*.nbc", recursive=True):
    st = os.stat(p)
    name = os.path.basename(p).split("-")[0]
    if st.st_mtime > t1:
        written.append(name)
        continue
    (used if st.st_atime > st.st_mtime + 0.5 else unused)[name] += 1
print(f"kernel files written by the compile: {sum(used.values())} read by the suite, {sum(unused.values())} not")
for name, count in sorted(used.items()):
    print(f"  read {count:3d}  {name}  (not read: {unused[name]})")
print(f"written by the suite itself: {len(written)}")
for name in sorted(written):
    print("  ", name)
