#!/usr/bin/env bash
# Builds .device-site/: the Python packages the GPU machine lacks, unpacked for its Python
# (3.12, x86-64), small enough to travel with the working tree (the device tool's 64 MiB).
# EnvPool is cut down to Atari: its other families' libraries and assets are left out and only
# Atari registers its games; .gitignore leaves the folder out of
# commits. Run it here, in the repository root:
#
#     bash bench/device/prepare.sh          # then: device run, carry [".device-site"],
#                                           #       command "bash bench/device/run.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
python_version=${PYTHON_VERSION:-3.12}
site=.device-site
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
    manylinux2014_x86_64 manylinux1_x86_64 any; do
    platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" \
    --implementation cp "${platforms[@]}" -d "$wheels" \
    gymnasium==1.4.0 farama-notifications==0.0.6 ale-py==0.12.1 \
    envpool==1.2.5 envpool-assets==0.3.0 dm-env==1.6 dm-tree==0.1.10 optree==0.20.0
rm -rf "$site" && mkdir -p "$site"
for wheel in "$wheels"/*.whl; do
    python3 -m zipfile -e "$wheel" "$site"
done
# EnvPool: Atari only.
find "$site/envpool" -name '*.so' ! -path '*/atari/*' -delete
rm -rf "$site/envpool/vizdoom/bin"
echo 'import envpool.atari.registration  # noqa: F401  (Atari only: bench/device/prepare.sh)' > "$site/envpool/entry.py"
find "$site/envpool_assets" -mindepth 1 -maxdepth 1 -type d ! -name atari ! -name __pycache__ -exec rm -rf {} +
du -sh "$site"
