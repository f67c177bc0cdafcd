"""What ``drivetrain train`` prints about a config: its help, a summary line and the full dump.

Docstrings are reStructuredText, written for the API reference; a terminal shows them as
plain text. :func:`plain_text` turns roles into their text (``:class:`~a.b.Name``` ->
``Name``, ``:func:`a.b.f``` -> ``a.b.f``, ``:data:`text <a.b.X>``` -> ``text``), inline
literals and interpreted text into their content (````x```` and ```x``` -> ``x``),
emphasis into its words, and a literal-block marker (``text::``) into a colon.
:func:`config_help` lists every field with its type, value and plain docstring;
:func:`config_summary` is the one line printed before a run; :func:`config_lines` the full
dump (``--verbose``).
"""

from __future__ import annotations

import re
from typing import Any

from drivetrain.train import fields

__all__ = ["config_help", "config_lines", "config_summary", "plain_text"]

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`(~?)([^`<]*?)\s*(?:<([^`>]*)>)?`")
_LITERAL = re.compile(r"``(.+?)``")
_INTERPRETED = re.compile(r"(?<![`\w])`([^`\s][^`]*?)`(?![`\w])")
_EMPHASIS = re.compile(r"(?<![\w*\\])(\*{1,2})(?=[^\s*])(.+?)(?<=[^\s*])\1(?![\w*])")
_LITERAL_MARKER = re.compile(r"(\S)[ \t]*::$", flags=re.M)


def _role(match: re.Match[str]) -> str:
    short, text, target = match.group(1), match.group(2).strip(), match.group(3)
    if target is not None and text:
        return text  # :role:`text <target>`
    name = target if target is not None else text
    return name.rsplit(".", 1)[-1] if short else name


def plain_text(doc: str) -> str:
    """``doc`` (reStructuredText) as plain text for a terminal; see the module docstring."""
    text = _ROLE.sub(_role, doc)
    text = _LITERAL.sub(r"\1", text)
    text = _INTERPRETED.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _LITERAL_MARKER.sub(r"\1:", text)
    return "\n".join(line for line in text.splitlines() if line.strip() != "::")


def _shown(config: Any) -> list[fields.FieldInfo]:
    """The fields worth showing: Atari preprocessing only for Atari configs."""
    return [
        f
        for f in fields.fields_of(config)
        if not (f.key.startswith("env.atari.") and config.env.suite != "atari")
    ]


def config_help(config: Any) -> str:
    """Every field of ``config``: ``--key type = value`` and its docstring, as plain text, by section."""
    lines = ["config fields (set with --key value; a unique last name is enough, e.g. --learning_rate):"]
    section = None
    for f in _shown(config):
        head = f.key.split(".")[0] if "." in f.key else ""
        if head != section:
            section = head
            lines.append(f"  [{head or 'run'}]")
        lines.append(f"  --{f.key} {fields.type_name(f.type)} = {f.value!r}")
        for doc_line in plain_text(f.doc).splitlines():
            lines.append(f"      {doc_line.strip()}")
    return "\n".join(lines)


def config_lines(config: Any) -> list[str]:
    """The full config, one ``key = value`` line per field, under a ``config:`` line."""
    return ["config:", *(f"  {f.key} = {f.value!r}" for f in _shown(config))]


def config_summary(config: Any, run_dir: Any) -> str:
    """One line: preset, agent, environment, budget, seed and run directory."""
    agent = type(config.agent).__name__.removesuffix("Config")
    env = config.env
    envs = f"{env.num_envs} env{'s' if env.num_envs != 1 else ''}"
    where = "" if config.execution.backend == "local" else f", on {config.execution.backend}"
    return (
        f"{config.preset or 'config'}: {agent} on {env.name} ({env.suite}, {envs}{where}), "
        f"{config.loop.total_env_steps:,} env steps, seed {config.seed} -> {run_dir}"
    )
