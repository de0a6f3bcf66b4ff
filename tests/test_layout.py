"""The package's shape: layers import only downward, no cycles, sizes a reader can hold.

The layers, from the bottom: `core` and `model` (no I/O), `stores` and `brokers`, `host`,
`service`, `dev`, and the entry points (`cli`, `client`, `testing`). Each module may import
its own layer and the layers below it; `core` imports nothing of the package outside
itself. These tests read the source with `ast`, so a violation names the file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import webxdc_rt

PACKAGE = Path(webxdc_rt.__file__).parent
LAYERS = {
    "core": 0, "model": 0, "stores": 1, "brokers": 1, "host": 2, "service": 3, "dev": 4,
    "conformance": 4, "cli": 5, "client": 5, "testing": 5, "__main__": 6, "__init__": 0,
}
"""The rank of each subpackage and top-level module: an import may not point to a higher
rank. `model` may use `core` (same rank, both free of I/O); `core` may not use `model`."""
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 60
OPTIONAL_IMPORTS = {"webxdc_rt.stores.postgres"}
"""Modules that need an optional dependency: importing them inside a function is how the
command works without it installed."""


@dataclass(frozen=True)
class Import:
    """One import of a module of the package, as written in a source file."""

    source: str
    """The importing module, dotted (`webxdc_rt.host.app`)."""
    target: str
    """The imported module, dotted; for `from . import x` the module `x` when it is one."""
    line: int
    in_function: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def resolve(source: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The package modules one `from ... import ...` names."""
    if node.level:
        base = source.split(".")
        base = base if is_package else base[:-1]
        base = base[:len(base) - node.level + 1]
        stem = ".".join(base + ([node.module] if node.module else []))
    else:
        stem = node.module or ""
    if not stem.startswith("webxdc_rt"):
        return []
    targets = []
    for alias in node.names:
        candidate = f"{stem}.{alias.name}"
        as_path = PACKAGE.parent / candidate.replace(".", "/")
        if as_path.with_suffix(".py").exists() or (as_path / "__init__.py").exists():
            targets.append(candidate)
    return targets or [stem]


def imports_of(path: Path) -> Iterator[Import]:
    source = module_name(path)
    tree = ast.parse(path.read_text("utf-8"))
    functions = [n for n in ast.walk(tree)
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    nested = {id(inner) for f in functions for inner in ast.walk(f)}
    type_checking = {id(inner) for n in ast.walk(tree)
                     if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
                     for inner in ast.walk(n)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            targets = resolve(source, path.name == "__init__.py", node)
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.startswith("webxdc_rt")]
        else:
            continue
        for target in targets:
            if id(node) in type_checking:
                continue  # names for the type checker only; checked by mypy, not imported
            yield Import(source, target, node.lineno, id(node) in nested)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


ALL_IMPORTS = [imp for path in modules() for imp in imports_of(path)]


def test_every_module_has_a_layer() -> None:
    unknown = sorted({layer(module_name(p)) for p in modules()} - set(LAYERS))
    assert unknown == [], f"modules outside the known layers: {unknown}"


def test_imports_point_down() -> None:
    upward = [f"{i.source}:{i.line} imports {i.target}" for i in ALL_IMPORTS
              if LAYERS[layer(i.target)] > LAYERS[layer(i.source)]
              or (layer(i.source) == "core" and layer(i.target) not in ("core", "__init__"))]
    assert upward == []


def test_no_function_level_imports_of_the_package() -> None:
    hidden = [f"{i.source}:{i.line} imports {i.target} inside a function" for i in ALL_IMPORTS
              if i.in_function and i.target not in OPTIONAL_IMPORTS]
    assert hidden == []


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for imp in ALL_IMPORTS:
        if imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def spans(path: Path) -> Iterator[tuple[str, str, int]]:
    """(kind, qualified name, lines) of every class and function in a module."""
    tree = ast.parse(path.read_text("utf-8"))

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                kind = "class" if isinstance(child, ast.ClassDef) else "function"
                name = f"{prefix}{child.name}"
                assert child.end_lineno is not None
                yield kind, name, child.end_lineno - child.lineno + 1
                yield from walk(child, name + ".")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, f"{module_name(path)}.")


@pytest.mark.parametrize("path", modules(), ids=module_name)
def test_sizes(path: Path) -> None:
    lines = len(path.read_text("utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{lines} lines"
    bounds = {"class": MAX_CLASS_LINES, "function": MAX_FUNCTION_LINES}
    too_long = [f"{kind} {name}: {n} lines" for kind, name, n in spans(path) if n > bounds[kind]]
    assert too_long == []


def test_every_subpackage_says_what_it_holds() -> None:
    missing = [str(init.relative_to(PACKAGE)) for init in PACKAGE.glob("*/__init__.py")
               if not ast.get_docstring(ast.parse(init.read_text("utf-8")))]
    assert missing == []


def test_test_modules_have_unique_names() -> None:
    """pytest imports test modules by their file name (the folders have no `__init__`):
    two modules of one name in different folders fail to collect together."""
    names = [path.name for path in Path(__file__).parent.rglob("test_*.py")
             if "node_modules" not in path.parts]
    assert sorted({name for name in names if names.count(name) > 1}) == []
