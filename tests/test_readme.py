"""The README's commands and example are real: CI runs the same test command, and the example runs."""

import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def bash_blocks():
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_quickstart_has_exactly_two_commands_and_ci_runs_the_test_command():
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [c.strip() for c in re.findall(r"```bash\n(.*?)```", quickstart, flags=re.S)]
    assert len(commands) == 2, commands
    assert all("\n" not in c for c in commands)
    assert "drivetrain train cartpole-dqn" in commands[0]
    assert "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()


def test_concepts_example_runs(capsys):
    block = README.split("<!-- readme-example: concepts -->", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, flags=re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.split()
    assert int(out[0]) > 0  # random CartPole episodes end within 2,000 steps
    assert 8 <= float(out[1]) <= 100
    assert out[-3:] == ["(64,", "2,", "4)"]


def test_agent_example_runs():
    block = README.split("<!-- readme-example: agent -->", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, flags=re.S).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    scope["dataset"].close()
    assert scope["agent"].train_step == 1_000
    assert 0 <= scope["loss_info"].loss < 100


def test_recurrent_example_runs(capsys):
    block = README.split("<!-- readme-example: recurrent -->", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, flags=re.S).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert "(32,)" in capsys.readouterr().out
    assert scope["agent"].train_step == 20
    assert scope["loss_info"].extra["num_valid"] > 0
    stored = scope["batch"].policy_info["state"][0]
    assert stored.shape == (16, scope["agent"].train_sequence_length, 32) and stored.any()


def test_ppo_example_runs(capsys):
    block = README.split("<!-- readme-example: ppo -->", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, flags=re.S).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert "log_prob" in capsys.readouterr().out
    assert scope["agent"].train_step == 5 * 4 * 4
    assert {"policy_loss", "value_loss", "entropy", "approx_kl"} <= set(scope["loss_info"].extra)
    assert len(scope["rollout"]) <= 1  # released: at most the newest item waits for the next update


def test_sac_example_runs():
    block = README.split("<!-- readme-example: sac -->", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, flags=re.S).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["agent"].train_step == 100
    assert {"critic_loss", "actor_loss", "alpha", "entropy", "q_values"} <= set(scope["loss_info"].extra)
    assert scope["loss_info"].extra["alpha"] < 1.0  # the temperature was tuned down from its start
    assert len(scope["replay"]) == 401  # 400 steps and the boundary item after the truncation at 200


def readme_example(name):
    block = README.split(f"<!-- readme-example: {name} -->", 1)[1]
    return re.search(r"```python\n(.*?)```", block, flags=re.S).group(1)


def test_load_agent_example_runs_on_a_run_directory(tmp_path, monkeypatch, capsys):
    from drivetrain.cli import main

    tiny = ["--total_env_steps", "300", "--learning_starts", "100", "--update_period", "100"]
    tiny += [
        "--gradient_steps",
        "2",
        "--fc_layers",
        "16,16",
        "--eval_interval",
        "0",
        "--stop_at_return",
        "none",
    ]
    tiny += ["--tensorboard", "false"]
    monkeypatch.chdir(tmp_path)
    assert main(["train", "cartpole-dqn", "--quiet", *tiny]) == 0  # into runs/cartpole-dqn-0
    capsys.readouterr()
    scope = {}
    exec(compile(readme_example("load-agent"), "README.md", "exec"), scope)
    out = capsys.readouterr().out.split()
    assert out[:2] == ["cartpole-dqn", "300"]
    assert 1 <= float(out[2]) <= 500  # one greedy episode's return
    assert scope["loaded"].agent.train_step == 4


def test_export_example_loads_the_program_with_torch_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(readme_example("export"), "README.md", "exec"), scope)
    metadata = json.loads(capsys.readouterr().out)
    assert metadata["observation_shape"] == [4] and metadata["observation_dtype"] == "<f4"
    assert tuple(scope["actions"].shape) == (8,) and tuple(scope["q_values"].shape) == (8, 2)
    assert scope["q_values"].dtype == scope["torch"].float32


LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|^\[[^\]]+\]:\s*(\S+)", flags=re.M)
REPO_PATH = re.compile(r"`((?:\.\./|drivetrain/|tests/|docs/|bench/|examples/)[^`\s]*)`")


def heading_anchors(markdown):
    """GitHub's anchors: headings lower-cased, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#{1,6} (.+)$", markdown, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_link_resolves_inside_the_repository():
    anchors = heading_anchors(README)
    links = [a or b for a, b in LINK.findall(README)]
    assert links, "no links found: the pattern is wrong"
    for target in links:
        if re.match(r"[a-z][a-z0-9+.-]*://", target):
            assert "drivetrain" not in target.lower(), f"{target}: link to the repository's own file instead"
            continue
        path, _, anchor = target.partition("#")
        if not path:
            assert anchor in anchors, f"#{anchor}: no such heading in README.md"
            continue
        resolved = (ROOT / path).resolve()
        assert resolved.is_relative_to(ROOT), f"{target}: outside the repository"
        assert resolved.exists(), f"{target}: no such file in the repository"


def test_every_path_named_in_code_exists_in_the_repository():
    for path in REPO_PATH.findall(README):
        resolved = (ROOT / path).resolve()
        assert resolved.is_relative_to(ROOT), f"`{path}`: outside the repository"
        assert resolved.exists() or "<" in path or "*" in path, f"`{path}`: no such file in the repository"
