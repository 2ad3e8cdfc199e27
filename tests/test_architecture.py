"""The package's import graph has no cycles.

Every ``import`` and ``from ... import`` of an emfast module counts, also
those inside functions: a deferred import hides a cycle from the
interpreter, not from a reader, and a cycle means two modules that cannot be
understood (or changed) one without the other.
"""
import ast
from pathlib import Path

import emfast

PACKAGE_ROOT = Path(emfast.__file__).parent


def _module_name(path):
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path, modules):
    """The emfast modules that the source file at ``path`` imports."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from .x import y`` imports the submodule x.y if there is one, else a name of x
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # a package's __init__ importing its own submodules is not a cycle edge back
            if target and target != name:
                found.add(target)
    return found


def import_graph():
    files = {_module_name(p): p for p in PACKAGE_ROOT.rglob("*.py")}
    graph = {name: set() for name in files}
    for name, path in files.items():
        graph[name] = _imported_modules(path, files)
    return graph


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_graph_sees_deferred_and_submodule_imports():
    graph = import_graph()
    assert "emfast._kernels" in graph["emfast._passes"]   # from ._kernels import _gaussian (compiled)
    assert "emfast._dask" in graph["emfast._sources"]               # inside a function
    assert "emfast._sources" in graph["emfast._mixture_sources"]    # from . import _sources
    assert "emfast" not in graph["emfast._mixture_sources"]
    assert "emfast._gaussian_mixture" in graph["emfast"]


def test_no_import_cycles():
    graph = import_graph()
    # the package root imports everything it exports, so a submodule below it that
    # imports ``emfast`` itself (e.g. for the public classes) closes a loop through it
    found = cycles(graph)
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)
