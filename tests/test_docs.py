"""The documentation site (``docs/``, ``mkdocs.yml``): it builds with ``mkdocs build --strict``, every
Python block of its pages runs, and its command lines name real presets, config keys and files.

A page's Python blocks run in order in one namespace (a page is one session), in a temporary
working directory. A block preceded by ``<!-- not run: REASON -->`` is skipped; there are few.
"""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)
FENCE = re.compile(
    r"(?:<!-- not run: (?P<reason>[^>]+?) -->\s*\n)?^```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^```",
    re.S | re.M,
)
MAX_SKIPPED = 3


def blocks(page, langs):
    """``(line, code, skip_reason)`` of the page's fenced blocks in ``langs``."""
    text = page.read_text()
    found = []
    for m in FENCE.finditer(text):
        if m.group("lang") in langs:
            line = text.count("\n", 0, m.start("code")) + 1
            found.append((line, m.group("code"), m.group("reason")))
    return found


def page_id(page):
    return page.relative_to(DOCS).as_posix()


PYTHON_PAGES = [p for p in PAGES if blocks(p, {"python"})]


def test_every_page_is_checked_and_few_blocks_are_skipped():
    assert {"index.md", "getting-started.md", "concepts.md", "checkpoints.md"} <= {page_id(p) for p in PAGES}
    assert len(PYTHON_PAGES) >= 8
    skipped = [(page_id(p), line) for p in PAGES for line, _, why in blocks(p, {"python"}) if why]
    assert len(skipped) <= MAX_SKIPPED, skipped


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=page_id)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    scope = {"__name__": "__docs__"}
    for line, code, skip in blocks(page, {"python"}):
        if skip:
            continue
        # Line numbers in tracebacks are those of the page.
        exec(compile("\n" * (line - 1) + code, str(page), "exec"), scope)
    for value in list(scope.values()):
        close = getattr(value, "close", None)
        if type(value).__name__ in {"ReplayDataset", "GymnasiumEnv", "VectorEnvAdapter"} and callable(close):
            close()


def command_lines():
    """Every ``drivetrain ...`` and ``python ...`` command of the pages' bash blocks, continuations joined."""
    found = []
    for page in PAGES:
        for line, code, _ in blocks(page, {"bash", "console", "shell"}):
            joined = re.sub(r"\\\n\s*", " ", code)
            for i, text in enumerate(joined.splitlines()):
                command = text.split(" #", 1)[0].strip().removeprefix("$ ")
                for part in command.split(" && "):
                    if part.startswith(("drivetrain ", "python ")):
                        found.append(pytest.param(part, id=f"{page_id(page)}:{line + i}"))
    return found


@pytest.mark.parametrize("command", command_lines())
def test_command_lines_are_real(command):
    from drivetrain import cli
    from drivetrain.train import get_preset, preset_names

    words = shlex.split(command)
    if words[0] == "python":
        if words[1] == "-m":
            assert words[2] in {"pytest", "mkdocs", "drivetrain"}, command
        else:
            assert (ROOT / words[1]).is_file(), f"{command}: no file {words[1]}"
        return
    assert words[1] in {"train", "eval", "play", "presets", "export", "compare", "tune"}, command
    if words[1] != "train":
        return
    own, overrides = cli._split_train_args(words[2:])
    names = [w for w in own if not w.startswith("-")]
    preset = names[0] if names else "cartpole-dqn"
    if preset.isupper() or preset.endswith((".yaml", ".yml", ".json")):  # a placeholder, or a preset file
        return
    assert preset in preset_names(), f"{command}: no preset {preset!r}"
    overrides = [(k, v) for k, v in overrides if v is None or not v.isupper()]  # RUN_DIR and the like
    cli._resolve_overrides(get_preset(preset).build(), overrides)


def test_presets_page_lists_every_preset():
    from drivetrain.train import preset_names

    table = (DOCS / "presets.md").read_text()
    missing = [name for name in preset_names() if f"`{name}`" not in table]
    assert not missing, f"docs/presets.md does not list {missing}"


def test_site_builds_without_warnings(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    warnings = [line for line in result.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert result.returncode == 0 and not warnings, result.stderr[-4000:]
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "core" / "index.html").is_file()
