#!/usr/bin/env bash
# The GPU checks on the device machine (after bench/device/prepare.sh here; carry .device-site):
#   bash bench/device/run.sh tests      every test marked `cuda` (each agent family on the GPU
#                                       against the CPU; whole CUDA runs), slowest listed; <= 5 min
#   bash bench/device/run.sh breakout   Breakout DQN's agent steps/s including updates, EnvPool on
#                                       all cores (bench/breakout_gpu.py), the local loop and a
#                                       collector thread beside the learner; <= 4 min
#   bash bench/device/run.sh            both (<= 9 min: device call timeout_s 590)
# Two calls, back to back while the machine is warm, give feedback between them. Logs go to $OUT
# (the device tool brings them back). BREAKOUT_ARGS sizes the Breakout runs (default: 100 s each,
# a row every 20k agent steps; the first compiles the update, the second finds it cached).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD/.device-site:$PWD" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
out=${OUT:-/tmp/device-out}
what=${1:-all}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/machine.txt"
python3 -c "import torch, numpy, gymnasium, ale_py, envpool, os; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__, 'gymnasium', gymnasium.__version__, 'cores', os.cpu_count())" 2>&1 | tee -a "$out/machine.txt"
if [[ $what == tests || $what == all ]]; then
    timeout 300 python3 -m pytest -m cuda -p no:cacheprovider -q --timeout 240 --durations=0 2>&1 \
        | tee "$out/cuda-tests.txt"
fi
if [[ $what == breakout || $what == all ]]; then
    read -r -a breakout <<< "${BREAKOUT_ARGS:---steps 5000000 --seconds 100 --log-interval 20000}"
    for execution in local threads; do
        timeout 130 python3 bench/breakout_gpu.py "${breakout[@]}" --execution "$execution" 2>&1 \
            | tee "$out/breakout-$execution.txt"
    done
fi
