import json, sys
for path in sys.argv[1:]:
    d = json.load(open(path))
    print(path.split("/")[-1])
    for b in d["benchmarks"]:
        e = b["extra_info"]; g = b["group"].replace("updates-adamw-model-", "")
        cols = ["fastdecay", "fastdecay.torch.AdamW", "torch-fused", "torch-foreach", "torch-fused-fp32"]
        ms = " ".join(f"{e.get(f'interleaved_{c}_ms', float('nan')):8.2f}" for c in cols)
        base = "torch-fused-fp32" if "torch-fused-fp32" in [k.split('_')[1] for k in e if k.startswith('interleaved_')] else "torch-fused"
        sp = f"fd {e[f'speedup_fastdecay_vs_{base}']:.2f}x  fd.torch {e[f'speedup_fastdecay.torch.AdamW_vs_{base}']:.2f}x vs {base}; vs torch-fused {e['speedup_fastdecay_vs_torch-fused']:.2f}x / {e['speedup_fastdecay.torch.AdamW_vs_torch-fused']:.2f}x"
        print(f"  {g:34s} {ms}  {sp}")
