"""Preset files: a preset kept as a YAML or JSON file, so that users keep a zoo of their own.

``drivetrain train my_preset.yaml`` trains the file's config (``--key value`` overrides still
apply on top), and ``drivetrain presets --show NAME [--format yaml|json]`` prints any preset as
such a file. A file is a mapping in one of two forms.

A **full** file holds the sections of a config as a run's ``config.json`` holds them
(:func:`~drivetrain.train.config.config_to_dict`): ``agent_kind`` (the agent's builder,
default ``dqn``), ``env``, ``agent``, ``replay``, ``loop``, ``execution``, ``seed``. A key left
out takes its config class's default. A run's ``config.json`` is itself a full file::

    name: my-cartpole
    doc: DQN on CartPole with a smaller network.
    agent_kind: dqn
    env: {name: CartPole-v1, num_envs: 1}
    agent: {learning_rate: 0.001, fc_layers: [64, 64]}
    loop: {total_env_steps: 20000}

A **partial** file names a ``base`` (a registered preset's name, or another preset file
ending in .yaml/.yml/.json, relative to this one) and the keys it changes; sections merge key by key into the base's::

    base: cartpole-dqn
    agent: {learning_rate: 3e-4}

A partial file that sets another ``agent_kind`` than its base's starts the ``agent`` section
from that agent's defaults. ``name`` (the run's ``config.preset``, and its default run folder
``runs/<name>-<seed>``) is the file's ``name`` key, else its ``preset`` key, else the file's
stem; ``doc`` is what ``drivetrain train FILE --help`` shows. YAML numbers such as ``3e-4`` are
floats, as in JSON. Every error (a missing file, a suffix other than .yaml/.yml/.json, a parse
error, an unknown key, a value of the wrong type) is a :class:`PresetFileError` naming the file
and the key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from drivetrain.train import presets
from drivetrain.train.checkpoint import atomic_write_text
from drivetrain.train.config import ExperimentConfig, config_from_dict, config_to_dict
from drivetrain.train.fields import ConfigError

__all__ = [
    "FilePreset",
    "PRESET_SUFFIXES",
    "PresetFileError",
    "find_preset",
    "is_preset_file",
    "load_preset_file",
    "preset_text",
    "show_preset",
    "write_preset_file",
]

PRESET_SUFFIXES = (".yaml", ".yml", ".json")
_META = ("name", "doc", "base")
_MAX_DEPTH = 16


class PresetFileError(ConfigError):
    """A preset file cannot be used; the message names the file and, where one is at fault, the key."""


@dataclasses.dataclass(frozen=True)
class FilePreset:
    """A preset read from a file: the same ``name``, ``doc``, ``summary`` and ``build()`` as a
    registered :class:`~drivetrain.train.presets.Preset`."""

    name: str
    doc: str
    config: ExperimentConfig
    path: Path

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else ""

    def build(self) -> ExperimentConfig:
        return self.config


def is_preset_file(arg: str) -> bool:
    """Whether ``arg`` names a preset file rather than a registered preset: it ends in
    .yaml/.yml/.json, or it is no registered name and an existing path."""
    if Path(arg).suffix.lower() in PRESET_SUFFIXES:
        return True
    return arg not in presets.preset_names() and os.path.exists(arg)


def find_preset(arg: str) -> presets.Preset | FilePreset:
    """The registered preset called ``arg``, or the preset file at ``arg``; PresetFileError
    (for a file) or ConfigError naming close presets (for an unknown name) otherwise."""
    if is_preset_file(arg):
        return load_preset_file(arg)
    try:
        return presets.get_preset(arg)
    except presets.UnknownPresetError as e:
        raise ConfigError(str(e)) from None


def load_preset_file(path: str | os.PathLike[str]) -> FilePreset:
    """Reads a full or partial preset file (see the module docstring)."""
    return _load(Path(path), ())


def _load(path: Path, seen: tuple[Path, ...]) -> FilePreset:
    data = _read_mapping(path)
    meta = {key: data.pop(key) for key in _META if key in data}
    for key, value in meta.items():
        if not isinstance(value, str):
            raise PresetFileError(f"{path}: {key}: expected a string, got {value!r}")
    merged = data
    if "base" in meta:
        merged = _merge_onto(_base_config(path, meta["base"], seen), data)
    if isinstance(merged.get("imports"), list):
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.append(folder)  # a dotted name of a package beside the file, in this process
        merged = {**merged, "imports": [_beside(path, name) for name in merged["imports"]]}
    try:
        config = config_from_dict(merged)
    except (ConfigError, ValueError) as e:  # ConfigTypeError, or a config's own range check
        raise PresetFileError(f"{path}: {e}") from None
    name = meta.get("name") or data.get("preset") or path.stem
    return FilePreset(name, meta.get("doc", ""), dataclasses.replace(config, preset=name), path)


def _beside(path: Path, name: Any) -> Any:
    """A module of ``imports`` that sits beside the preset file: its absolute path (kept so in
    config.json, so that a resume or eval from elsewhere imports that file, not a namesake)."""
    if not isinstance(name, str) or not name.isidentifier():
        return name
    for candidate in (path.parent / f"{name}.py", path.parent / name / "__init__.py"):
        if candidate.is_file():
            return str(candidate.resolve())
    return name


def _read_mapping(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    if suffix not in PRESET_SUFFIXES:
        raise PresetFileError(
            f"{path}: a preset file ends in {', '.join(PRESET_SUFFIXES)}, not {suffix or 'no suffix'!r}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PresetFileError(f"{path}: no such preset file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PresetFileError(f"{path}: cannot read it: {e}") from None
    try:
        data = (
            json.loads(text, object_pairs_hook=_no_duplicates)
            if suffix == ".json"
            else yaml.load(text, Loader=_Loader)
        )
    except _DuplicateKeyError as e:
        raise PresetFileError(f"{path}: {e}") from None
    except json.JSONDecodeError as e:
        raise PresetFileError(f"{path}: not valid JSON: {e}") from None
    except yaml.YAMLError as e:
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None) or str(e)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise PresetFileError(f"{path}: not valid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PresetFileError(
            f"{path}: a preset file holds a mapping of config keys, got {type(data).__name__}"
        )
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise PresetFileError(f"{path}: config keys are strings, got {bad[0]!r}")
    return data


def _base_config(path: Path, base: str, seen: tuple[Path, ...]) -> ExperimentConfig:
    if Path(base).suffix.lower() not in PRESET_SUFFIXES:
        try:
            return presets.get_preset(base).build()
        except presets.UnknownPresetError as e:
            raise PresetFileError(f"{path}: base: {e}") from None
    base_path = Path(base) if Path(base).is_absolute() else path.parent / base
    resolved = base_path.resolve()
    if resolved in seen or len(seen) >= _MAX_DEPTH:
        raise PresetFileError(f"{path}: base: {base} leads back to itself")
    if not base_path.is_file():
        raise PresetFileError(f"{path}: base: no such preset file {base_path}")
    return _load(base_path, (*seen, path.resolve())).config


def _merge_onto(base: ExperimentConfig, changes: dict[str, Any]) -> dict[str, Any]:
    merged = config_to_dict(base)
    merged.pop("preset", None)
    if "agent_kind" in changes and changes["agent_kind"] != merged["agent_kind"]:
        merged["agent"] = {}  # another agent: its own defaults
    return _deep_merge(merged, changes)


def _deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------- writing
def preset_text(config: ExperimentConfig, name: str | None = None, doc: str = "", fmt: str = "yaml") -> str:
    """``config`` as a full preset file in ``fmt`` ('yaml' or 'json'); ``name`` defaults to
    ``config.preset``. Loading the text back gives ``config`` (its ``preset`` being ``name``)."""
    body = config_to_dict(config)
    del body["preset"]
    kind = body.pop("agent_kind")
    data = {"name": name or config.preset or "unnamed", **({"doc": doc} if doc else {}), "agent_kind": kind}
    data |= body
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    if fmt != "yaml":
        raise ValueError(f"unknown preset file format {fmt!r}: 'yaml' or 'json'")
    header = "# A drivetrain preset: `drivetrain train THIS_FILE` trains it.\n"
    return header + str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100))


def write_preset_file(
    config: ExperimentConfig, path: str | os.PathLike[str], name: str | None = None, doc: str = ""
) -> Path:
    """Writes ``config`` as a full preset file (atomically), YAML or JSON by the suffix of ``path``."""
    suffix = Path(path).suffix.lower()
    if suffix not in PRESET_SUFFIXES:
        raise PresetFileError(f"{path}: a preset file ends in {', '.join(PRESET_SUFFIXES)}")
    return atomic_write_text(preset_text(config, name, doc, "json" if suffix == ".json" else "yaml"), path)


def show_preset(arg: str, fmt: str = "yaml") -> str:
    """``drivetrain presets --show``: the preset (a name or a file) as a full preset file."""
    preset = find_preset(arg)
    return preset_text(preset.build(), preset.name, preset.doc, fmt)


# ---------------------------------------------------------------------- YAML dialect
class _DuplicateKeyError(ValueError):
    """A mapping names a key twice (the later one would silently win)."""


class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that also reads ``3e-4`` and ``1e5`` as floats (YAML 1.1 wants ``3.0e-4``) and
    refuses a key given twice in one mapping."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` merges, it repeats nothing
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKeyError(
                    f"key {key!r} appears twice in one mapping (line {key_node.start_mark.line + 1})"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s object hook: a key given twice is an error, not last-wins."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789"))


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """SafeDumper writing mappings as blocks, lists on one line (``fc_layers: [256, 256]``) and
    multi-line strings (a preset's ``doc``) as literal blocks; a string that the loader would read
    as a float (``1e5``) is quoted."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789"))


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(list, _represent_list)
