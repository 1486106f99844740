"""A table of ``test_model_param_list_adamw``'s interleaved medians from pytest-benchmark JSON files.

    python bench/model_lists_summary.py RUN.json [RUN2.json ...]

One line per list and configuration: the medians (ms) of fd.adamw_step, fastdecay.torch.AdamW,
torch fused, torch foreach and torch fused on float32 copies (bfloat16 configurations), then
both of ours against the target's baseline (torch fused on float32 copies for bfloat16
parameters, torch fused otherwise) and against torch fused on the same list.
"""

import json
import sys

COLUMNS = ["fastdecay", "fastdecay.torch.AdamW", "torch-fused", "torch-foreach", "torch-fused-fp32"]


def lines(path):
    for bench in json.load(open(path))["benchmarks"]:
        info = bench["extra_info"]
        if "interleaved_fastdecay_ms" not in info:
            continue
        group = bench["group"].replace("updates-adamw-model-", "")
        ms = " ".join(f"{info.get(f'interleaved_{c}_ms', float('nan')):8.2f}" for c in COLUMNS)
        base = "torch-fused-fp32" if "interleaved_torch-fused-fp32_ms" in info else "torch-fused"
        ours = info[f"speedup_fastdecay_vs_{base}"], info[f"speedup_fastdecay.torch.AdamW_vs_{base}"]
        same = info["speedup_fastdecay_vs_torch-fused"], info["speedup_fastdecay.torch.AdamW_vs_torch-fused"]
        yield (f"  {group:34s} {ms}  fd {ours[0]:.2f}x  fd.torch {ours[1]:.2f}x vs {base}; "
               f"vs torch-fused {same[0]:.2f}x / {same[1]:.2f}x")


def main(paths):
    for path in paths:
        print(path)
        print("\n".join(lines(path)))


if __name__ == "__main__":
    main(sys.argv[1:])
