"""MkDocs hooks: links to repository files, and reStructuredText roles in docstrings.

- A Markdown link from a page to a file of the repository outside ``docs/`` (e.g.
  ``[loss](../drivetrain/agents/dqn/loss.py)``) is served: the file is copied into the
  site under ``repo/`` and the link points at the copy. A link to a file that does not
  exist is left as written, so the strict build reports it.
- The docstrings use roles such as ``:class:`~drivetrain.core.TimeStep```; Markdown renders
  them as ``:class:<code>~drivetrain.core.TimeStep</code>``. The role is dropped, and a
  leading ``~`` keeps only the last name, as Sphinx does.
"""

from __future__ import annotations

import pathlib
import posixpath
import re

from mkdocs.structure.files import File

_LINK = re.compile(r"(\]\()([^)\s#]+)((?:#[^)\s]*)?\))")
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|const|py:\w+):<code>(~?)([^<]*)</code>")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_PREFIX = "repo"


def _root(config) -> pathlib.Path:
    return pathlib.Path(config["config_file_path"]).resolve().parent


def _repo_target(page_src: str, target: str, config) -> str | None:
    """The target's path relative to the repository root, if it is a repository file outside docs/."""
    if "://" in target or target.startswith(("/", "mailto:")):
        return None
    docs = pathlib.Path(config["docs_dir"]).resolve()
    path = (docs / posixpath.dirname(page_src) / target).resolve()
    root = _root(config)
    if path.is_relative_to(docs) or not path.is_relative_to(root) or not path.is_file():
        return None
    return path.relative_to(root).as_posix()


def _links(markdown: str):
    text = _FENCE.sub("", markdown)
    return [m.group(2) for m in _LINK.finditer(text)]


def on_files(files, config):
    wanted = set()
    for file in files.documentation_pages():
        for target in _links(pathlib.Path(file.abs_src_path).read_text(encoding="utf-8")):
            rel = _repo_target(file.src_uri, target, config)
            if rel is not None:
                wanted.add(rel)
    for rel in sorted(wanted):
        uri = f"{_PREFIX}/{rel}"
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(_root(config) / rel)))
    return files


def on_page_markdown(markdown, page, config, files):
    def fix(match: re.Match[str]) -> str:
        rel = _repo_target(page.file.src_uri, match.group(2), config)
        if rel is None:
            return match.group(0)
        new = posixpath.relpath(f"{_PREFIX}/{rel}", posixpath.dirname(page.file.src_uri) or ".")
        return f"{match.group(1)}{new}{match.group(3)}"

    parts = re.split(r"(^```.*?^```)", markdown, flags=re.M | re.S)
    return "".join(p if p.startswith("```") else _LINK.sub(fix, p) for p in parts)


def on_page_content(html, page, config, files):
    return _ROLE.sub(
        lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>", html
    )
