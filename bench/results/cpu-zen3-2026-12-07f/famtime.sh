# $1 tree, $2 family; one process, empty cache
cd $1 && NUMBA_CACHE_DIR=$(mktemp -d) PYTHONPATH=$1 /work/main/.venv/bin/python -c "
import sys; from fastdecay import _precompile as p; print(sys.argv[1], '$1', '%.1f s' % p._run(sys.argv[1])[1])" "$2"
