"""No import circles inside the package: imports flow one way (the public modules over
the validation, layout and dispatch modules, over the kernels).

The graph is read from the source with ``ast``, not by importing: every ``import`` and
``from ... import`` anywhere in a module counts, at the top or inside a function (an
import deferred into a function is still a dependency, only a later one). ``from . import
name`` is an edge to the submodule ``name`` where one exists, else to the package's
``__init__`` (which re-exports the public names and so imports nearly everything).
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "fastdecay"


def _modules(package):
    """{dotted module name: (path, is a package __init__)} of every .py file under ``package``."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_init else parts)] = (path, is_init)
    return modules


def _targets(module, is_init, node, modules):
    """The package's modules an import statement ``node`` in ``module`` reaches."""
    root = module.split(".")[0]
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            package = module.split(".") if is_init else module.split(".")[:-1]
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    found = set()
    for name in names:
        if name != root and not name.startswith(root + "."):
            continue
        while name not in modules and "." in name:  # `import fastdecay.x.y` of a name inside x
            name = name.rsplit(".", 1)[0]
        if name in modules and name != module:
            found.add(name)
    return found


def import_graph(package=PACKAGE):
    """{module: set of the package's modules it imports}, at any depth of the source."""
    modules = _modules(package)
    graph = {}
    for module, (path, is_init) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[module] |= _targets(module, is_init, node, modules)
    return graph


def circles(graph):
    """Each import circle as a list of modules [a, b, ..., a] (one per strongly connected group)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(_path_through(graph, group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _path_through(graph, group):
    """One circle inside a strongly connected ``group``, as [a, b, ..., a]."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError("a strongly connected group always holds a circle")


def test_the_circle_finder_finds_circles_and_only_them():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_reader_sees_deferred_relative_and_package_imports(tmp_path):
    pkg = tmp_path / "fastdecay"
    (pkg / "_cpu").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .schedules import constant\n")
    (pkg / "schedules.py").write_text("def f():\n    from ._cpu import kernel\n")
    (pkg / "_cpu" / "__init__.py").write_text("")
    (pkg / "_cpu" / "kernel.py").write_text("from .. import constant\nimport fastdecay._cpu\n")
    graph = import_graph(pkg)
    assert graph["fastdecay.schedules"] == {"fastdecay._cpu.kernel"}
    assert graph["fastdecay._cpu.kernel"] == {"fastdecay", "fastdecay._cpu"}
    assert circles(graph) == [["fastdecay", "fastdecay.schedules", "fastdecay._cpu.kernel", "fastdecay"]]


def test_the_package_has_no_import_circles():
    graph = import_graph()
    assert len(graph) > 20 and "fastdecay._validate" in graph["fastdecay.schedules"]
    found = circles(graph)
    assert not found, "import circles inside the package:\n" + "\n".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize("low, high", [
    ("fastdecay._validate", "fastdecay.schedules"),
    ("fastdecay._layout", "fastdecay.schedules"),
    ("fastdecay._cpu.schedule", "fastdecay._cpu.schedule_tables"),
    ("fastdecay.schedules", "fastdecay.cli"),
])
def test_lower_layers_do_not_import_higher_ones(low, high):
    """Spot checks of the layering: nothing reachable from ``low`` imports ``high``."""
    graph = import_graph()
    seen, todo = set(), [low]
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        todo.extend(graph[v])
    assert high not in seen
