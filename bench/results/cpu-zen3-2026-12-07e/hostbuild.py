import sys, subprocess, time, pathlib
sys.path.insert(0, "tests")
import test_cuda_host as H
build = pathlib.Path("/tmp/prof2/hb"); build.mkdir(exist_ok=True)
(build / "shim.cpp").write_text(H.SHIM.replace("// FUSED ENTRIES", H.host_fused_entries() + "\n//") + H.NORMALS_SHIM)
for opt in sys.argv[1:]:
    cmd = [H.CXX, "-std=c++17", opt, "-ffp-contract=off", "-fPIC", "-shared", "-Wall", "-Werror", "-Wno-unknown-pragmas",
           f"-I{H.KERNELS}", str(build / "shim.cpp"), "-o", str(build / f"lib{opt}.so"), "-lm"]
    t = time.perf_counter(); r = subprocess.run(cmd, capture_output=True, text=True); print(opt, r.returncode, f"{time.perf_counter()-t:.1f} s")
