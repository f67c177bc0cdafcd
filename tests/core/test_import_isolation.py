"""drivetrain.core and drivetrain.replay import with torch and ray blocked."""

import subprocess
import sys

BLOCK = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'ray'):
            raise ImportError('blocked: ' + name)
        return None
sys.meta_path.insert(0, Blocker())
import drivetrain.core, drivetrain.replay, drivetrain.policies, drivetrain
assert not any(m.split('.')[0] in ('torch', 'ray') for m in sys.modules)
print('ok')
"""


def test_core_and_replay_import_without_torch_or_ray():
    out = subprocess.run([sys.executable, "-c", BLOCK], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_blocker_really_blocks():
    out = subprocess.run(
        [sys.executable, "-c", BLOCK + "\nimport torch\n"], capture_output=True, text=True, check=False
    )
    assert out.returncode != 0 and "blocked: torch" in out.stderr
