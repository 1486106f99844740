"""The ratios of identity_ab.txt: each round's fastdecay.torch optimizer against torch's fused one (1,000 x 16 and
the fixed-cost benchmark), per tree. python summary.py identity_ab.txt"""
import re, sys
tree = label = None
seen = set()
for line in open(sys.argv[1]):
    m = re.match(r"== (\S+) round (\d+) \((.*)\)", line)
    if m:
        tree, label = m.group(1), f"{m.group(3)} round {m.group(2)}"
        per = {}
        continue
    m = re.match(r"(fd|fused): .*, ([\d.]+) us/tensor", line)
    if m:
        per[m.group(1)] = float(m.group(2))
        if len(per) == 2:
            print(f"{tree} {label}: SGD {per['fd']:.3f} us/tensor, fused {per['fused']:.3f}: {per['fused'] / per['fd']:.2f}x")
        continue
    m = re.search(r"updates-(\w+)-step-fixed-cost: tensors=(\d+).*speedup_fastdecay\.torch\.\w+_vs_torch-fused=([\d.]+)", line)
    if m and (tree, label, m.group(1), m.group(2)) not in seen:
        seen.add((tree, label, m.group(1), m.group(2)))
        print(f"{tree} {label}: {m.group(1)} x{m.group(2)}: {float(m.group(3)):.2f}x torch fused")
