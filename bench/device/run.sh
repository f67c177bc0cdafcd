#!/usr/bin/env bash
# The GPU checks, in one call of the device tool (after bench/device/prepare.sh here):
#   1. every test marked `cuda` (each agent family on the GPU against the CPU; whole CUDA runs),
#   2. Breakout DQN's agent steps/s including updates, EnvPool on all cores (bench/breakout_gpu.py),
#      locally and with a collector thread beside the learner.
# Logs go to $OUT (the device tool brings them back). BREAKOUT_ARGS sizes step 2 (default: 120 s
# per run, a row every 20k agent steps). At most 9.7 minutes with a warm machine: give the
# device call timeout_s 590.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD/.device-site:$PWD" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
out=${OUT:-/tmp/device-out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/machine.txt"
python3 -c "import torch, numpy, gymnasium, ale_py, envpool, os; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__, 'gymnasium', gymnasium.__version__, 'cores', os.cpu_count())" 2>&1 | tee -a "$out/machine.txt"
timeout 240 python3 -m pytest -m cuda -p no:cacheprovider -q --timeout 200 2>&1 | tee "$out/cuda-tests.txt"
read -r -a breakout <<< "${BREAKOUT_ARGS:---steps 5000000 --seconds 120 --log-interval 20000}"
for execution in local threads; do
    timeout 170 python3 bench/breakout_gpu.py "${breakout[@]}" --execution "$execution" 2>&1 \
        | tee "$out/breakout-$execution.txt"
done
