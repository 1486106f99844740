import torch, timeit, operator
n=1000
ts=[torch.randn(16) for _ in range(n)]
ps=[torch.nn.Parameter(t) for t in ts]
d={p:{"step":1,"m":2} for p in ps}
tests = {
 "data_ptr": lambda: list(map(torch.Tensor.data_ptr, ts)),
 "is_contiguous": lambda: all(map(torch.Tensor.is_contiguous, ts)),
 "numel": lambda: list(map(torch.Tensor.numel, ts)),
 "dtype attrget": lambda: list(map(operator.attrgetter("dtype"), ts)),
 "shape attrget": lambda: list(map(operator.attrgetter("shape"), ts)),
 "type": lambda: set(map(type, ts)),
 "is_neg": lambda: any(map(torch.Tensor.is_neg, ts)),
 "is_cpu": lambda: all(map(operator.attrgetter("is_cpu"), ts)),
 "grad": lambda: list(map(operator.attrgetter("grad"), ps)),
 "state get": lambda: list(map(d.get, ps)),
 "id": lambda: list(map(id, ts)),
 "increment_version": lambda: torch.autograd.graph.increment_version(ts),
 "_version": lambda: list(map(operator.attrgetter("_version"), ts)),
}
for k,f in tests.items():
    t=min(timeit.repeat(f, number=200, repeat=5))/200
    print(f"{k:20s} {t/n*1e9:6.1f} ns/tensor")
