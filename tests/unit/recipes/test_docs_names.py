"""The module paths and files the docs name exist.

docs/*.md and README.md name modules as `rayref.x.y` (or, within a layer's description,
`x.y.Name` from a layer) and files as `operator/rayref/...`; a module that is renamed or
merged leaves these behind (docs once cited `rayref.mirror.mapping` long after it went).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "operator" / "rayref"
PAGES = [*sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "README.md"]
LAYERS = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
QUALIFIED = re.compile(r"\brayref((?:\.[A-Za-z_]\w*)+)")
IN_CODE = re.compile(r"`((?:" + "|".join(LAYERS) + r")(?:\.[A-Za-z_]\w*)+)")
FILE = re.compile(r"\boperator/rayref/[\w/.]*\w")
# Not module paths: the API group and the image registry of the offline bundle.
NOT_MODULES = ("io", "local")
VALUES = yaml.safe_load((REPO_ROOT / "charts/rayref-operator/values.yaml").read_text("utf-8"))


def _chart_value(dotted: str) -> bool:
    """`sharding.enabled` in a doc is the chart's value, not a module."""
    tree: Any = VALUES
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def _module_file(parts: list[str]) -> Path | None:
    base = PACKAGE.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _resolves(dotted: str) -> bool:
    """A module, or a module then attributes (`rayref.kube.client.KubeClient.patch_status`)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        if _module_file(parts[:cut]) is None:
            continue
        target: object = importlib.import_module("rayref." + ".".join(parts[:cut]))
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def _named(pattern: re.Pattern[str], text: str) -> set[str]:
    return {m.group(1).removeprefix(".").rstrip(".") for m in pattern.finditer(text)}


def test_every_module_path_named_in_the_docs_exists() -> None:
    stale = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        names = _named(QUALIFIED, text) | {n for n in _named(IN_CODE, text) if not _chart_value(n)}
        names = {n for n in names if n.split(".")[0].split("_")[0] not in NOT_MODULES}
        stale += [f"{page.relative_to(REPO_ROOT)}: {n}" for n in sorted(names) if not _resolves(n)]
    assert not stale, f"docs name modules or attributes that do not exist: {stale}"


def test_every_file_path_named_in_the_docs_exists() -> None:
    stale = [
        f"{page.relative_to(REPO_ROOT)}: {path}"
        for page in PAGES
        for path in sorted(set(FILE.findall(page.read_text(encoding="utf-8"))))
        if not (REPO_ROOT / path).exists()
    ]
    assert not stale, f"docs name files that do not exist: {stale}"


# Described as a whole, each on its own page (docs/simulator.md, docs/demo.md, testing.md).
WHOLE_PACKAGES = frozenset({"simulator", "demo", "devcluster"})


def _tree_of_design_md() -> set[str]:
    """The `package/module.py` names of design.md's tree (`operator/rayref/` part)."""
    text = (REPO_ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    block = text.split("## Tree", 1)[1].split("```")[1].split("\ntests/", 1)[0]
    named, package = set(), ""
    for line in block.splitlines():
        heading = re.match(r"^  (\w+)/", line)
        if heading:
            package = heading.group(1) + "/"
        elif re.match(r"^  \S", line):
            package = ""
        named |= {package + name for name in re.findall(r"\b(\w+\.py)\b", line)}
    return named


def test_design_md_tree_names_every_module() -> None:
    modules = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" and path.relative_to(PACKAGE).parts[0] not in WHOLE_PACKAGES
    }
    named = _tree_of_design_md()
    assert not modules - named, (
        f"modules docs/design.md's tree leaves out: {sorted(modules - named)}; add a line each"
    )
    assert not named - modules, (
        f"docs/design.md's tree names no such module: {sorted(named - modules)}"
    )
