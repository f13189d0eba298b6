"""The layers of docs/architecture.md, 'Layers', kept: imports point down only, and never in a circle.

Every module of connector/ and adapters/ is parsed (not imported) and each of its imports counted,
those inside functions too: a lower layer importing a higher one, or modules importing each other
round a cycle, fail this test with the modules and lines named.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("connector", "adapters")

# Layer of a module: the longest prefix that names it. Each layer may import the layers listed.
LAYER_OF = {
    "connector": "base",
    "connector.errors": "base",
    "connector.logs": "base",
    "connector.domain": "domain",
    "connector.config": "config",
    "connector.config_destinations": "config",
    "connector.storage": "storage",
    "adapters": "adapters",
    "connector.services": "services",
    "connector.web": "web",
    "connector.cli": "cli",
}
MAY_IMPORT = {
    "base": {"base"},
    "domain": {"base", "domain"},
    "config": {"base", "domain", "config"},
    "storage": {"base", "domain", "config", "storage"},
    "adapters": {"base", "domain", "config", "adapters"},
    "services": {"base", "domain", "config", "storage", "adapters", "services"},
    "web": {"base", "domain", "config", "storage", "adapters", "services", "web"},
    "cli": {"base", "domain", "config", "storage", "adapters", "services", "web", "cli"},
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    """The project modules `name` imports, anywhere in its body. `from a.b import c` imports the
    module a.b.c when there is one, else the module a.b."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing package
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for target in targets:
            while target and target not in known:  # `import connector.web.app` -> that module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append(Import(name, target, node.lineno))
    return found


def layer(module: str) -> str | None:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in LAYER_OF:
            return LAYER_OF[".".join(parts[:end])]
    return None


def graph(root: Path) -> list[Import]:
    found = modules(root)
    return [imp for name, path in found.items() for imp in imports_of(name, path, set(found))]


def upward(imports: list[Import]) -> list[str]:
    problems = []
    for imp in imports:
        mine, theirs = layer(imp.importer), layer(imp.imported)
        if mine is None:
            problems.append(f"{imp.importer}: in no layer (add its package to LAYER_OF)")
        elif theirs not in MAY_IMPORT[mine]:
            problems.append(f"{imp.importer} ({mine}) line {imp.line} imports {imp.imported} ({theirs})")
    return sorted(set(problems))


def cycles(imports: list[Import]) -> list[list[str]]:
    """Each strongly connected group of two or more modules (Tarjan), as a sorted list of names."""
    edges: dict[str, set[str]] = {}
    for imp in imports:
        edges.setdefault(imp.importer, set()).add(imp.imported)
        edges.setdefault(imp.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_no_module_imports_a_higher_layer():
    problems = upward(graph(ROOT))
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_the_import_graph_has_no_cycle():
    found = cycles(graph(ROOT))
    assert not found, "modules that import each other:\n" + "\n".join(" <-> ".join(group) for group in found)


def test_every_module_is_in_a_layer():
    assert [name for name in modules(ROOT) if layer(name) is None] == []


def test_the_layers_are_where_the_tree_says():
    assert {layer(name) for name in modules(ROOT)} == set(MAY_IMPORT)


# --- the checks themselves, on a small tree of their own -------------------------------------------

def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(tmp_path, {
        "connector/__init__.py": "", "adapters/__init__.py": "",
        "connector/domain/__init__.py": "", "connector/domain/orders.py": "import decimal\n",
        "connector/storage/__init__.py": "",
        "connector/storage/store.py": "from connector.domain import orders\n",
        "connector/web/__init__.py": "", "connector/web/app.py": "from connector.storage.store import Store\n",
    })
    return tmp_path


def test_a_clean_tree_passes(tree: Path):
    assert upward(graph(tree)) == [] and cycles(graph(tree)) == []


def test_an_upward_import_inside_a_function_is_found(tree: Path):
    write(tree, {"connector/storage/store.py": "def f():\n    from connector.web import app\n"})
    assert upward(graph(tree)) == ["connector.storage.store (storage) line 2 imports connector.web.app (web)"]


def test_a_cycle_within_one_layer_is_found(tree: Path):
    write(tree, {"connector/domain/stages.py": "from connector.domain.orders import X\n",
                 "connector/domain/orders.py": "import connector.domain.stages\n"})
    assert upward(graph(tree)) == []
    assert cycles(graph(tree)) == [["connector.domain.orders", "connector.domain.stages"]]


def test_a_relative_import_is_resolved(tree: Path):
    write(tree, {"connector/domain/orders.py": "from ..web import app\n"})
    assert upward(graph(tree)) == ["connector.domain.orders (domain) line 1 imports connector.web.app (web)"]
