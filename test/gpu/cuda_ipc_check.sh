#!/usr/bin/env bash
# CUDA tensors across processes, on a machine with a GPU: finds a Python whose torch sees CUDA
# (PYTHON, else python3/python on PATH, else the repo's .venv), runs the two-process check and,
# where pytest is there too, the CUDA test of python/tests/test_tensors.py. Prints PASS/FAIL
# lines; exits non-zero on a failure. Without a CUDA-capable torch it prints SKIP and exits 0.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
candidates=("${PYTHON:-}" python3 python "$root/.venv/bin/python" /usr/bin/python3 /opt/conda/bin/python)
py=""
for c in "${candidates[@]}"; do
  [ -n "$c" ] || continue
  command -v "$c" >/dev/null 2>&1 || continue
  if "$c" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then py="$c"; break; fi
done
if [ -z "$py" ]; then
  echo "SKIP no Python with a CUDA-capable torch found (tried: ${candidates[*]})"
  exit 0
fi
echo "python: $py ($("$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'))"
rc=0
"$py" "$here/cuda_ipc_check.py" || rc=1
if "$py" -c 'import pytest, numpy' >/dev/null 2>&1; then
  if (cd "$root" && "$py" -m pytest -q python/tests/test_tensors.py -k cuda -p no:cacheprovider); then
    echo "PASS pytest test_tensors.py -k cuda"
  else
    echo "FAIL pytest test_tensors.py -k cuda"; rc=1
  fi
else
  echo "SKIP pytest (not installed for $py)"
fi
exit $rc
