"""No import circle anywhere in the package, and sweep/ stays a recipe: its modules import each other without a circle (imports inside functions
count too: a lazy import hides a circle from Python, not from a reader), no module is named like
a function or class it defines (a submodule import would rebind the package's attribute), and
each module stays under 350 lines. Imports only for the type checker are left out."""

import ast
from pathlib import Path

SWEEP = Path(__file__).resolve().parents[1] / "attempt_dist" / "sweep"
PACKAGE = "attempt_dist.sweep"
MAX_LINES = 350


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import/ImportFrom of the tree, anywhere, except under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (imp for child in node.orelse for imp in _imports(ast.Module(body=[child], type_ignores=[])))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def _targets(node: ast.stmt, modules: set[str]) -> set[str]:
    """The sweep modules an import statement of a sweep module loads ("__init__" for the package)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        # `from .x import y` in attempt_dist.sweep: level 1 is the package itself, 2 its parent.
        base = PACKAGE.rsplit(".", node.level - 1)[0] if node.level > 1 else PACKAGE
        full = ".".join(filter(None, [base if node.level else "", node.module or ""]))
        names = [full] + [f"{full}.{alias.name}" for alias in node.names]  # y may be a submodule
    out = set()
    for name in names:
        if name == PACKAGE:
            out.add("__init__")
        elif name.startswith(PACKAGE + ".") and name[len(PACKAGE) + 1:] in modules:
            out.add(name[len(PACKAGE) + 1:])
    return out


def import_graph(folder: Path = SWEEP) -> dict[str, set[str]]:
    modules = {p.stem for p in folder.glob("*.py")}
    graph = {}
    for module in modules:
        tree = ast.parse((folder / f"{module}.py").read_text())
        graph[module] = set().union(*(_targets(node, modules) for node in _imports(tree))) - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph (its modules, the first repeated at the end), or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "closed"
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_graph_sees_lazy_imports_and_a_circle_through_them(tmp_path):
    # The check itself: a circle closed by an import inside a function is found, the
    # type checker's imports are not edges.
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n"
                                   "def f():\n    from .c import z\n")
    (tmp_path / "c.py").write_text("import attempt_dist.sweep.a\n")
    graph = import_graph(tmp_path)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    (tmp_path / "c.py").write_text("")
    assert find_cycle(import_graph(tmp_path)) is None


def test_sweep_modules_import_each_other_without_a_circle():
    graph = import_graph()
    assert {"recipe", "plan", "submit", "schedule", "watch", "report", "read"} <= set(graph)
    assert graph["recipe"] >= {"plan", "submit", "schedule", "watch", "report"}  # the recipe's steps
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def package_graph(root: Path = SWEEP.parent) -> dict[str, set[str]]:
    """The import graph of every module of the package at `root`, by dotted name (a package is
    its __init__). `from X import y` is an edge to X.y where that is a module, else to X."""
    top = root.name
    modules = {}
    for path in root.rglob("*.py"):
        parts = [top, *path.relative_to(root).with_suffix("").parts]
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in _imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
                continue
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = ".".join(filter(None, [base if node.level else "", node.module or ""]))
            edges |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
        graph[name] = (edges & set(modules)) - {name}
    return graph


def test_the_package_graph_resolves_relative_imports_to_modules():
    graph = package_graph()
    assert "attempt_dist.tasks.metrics" in graph["attempt_dist.tasks"]  # from .metrics import ...
    assert "attempt_dist.errors" in graph["attempt_dist.training.config"]  # from ..errors import ...
    assert "attempt_dist.methods.needs" in graph["attempt_dist.training.config"]  # from ..methods import needs


def test_no_import_circle_anywhere_in_the_package():
    # Within sweep/ and between all rooms: two modules that need each other are one idea split
    # in two, or a lower one reaching up.
    graph = package_graph()
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_no_sweep_module_is_named_like_what_it_defines():
    for path in SWEEP.glob("*.py"):
        tree = ast.parse(path.read_text())
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert path.stem not in defined, f"sweep/{path.name} defines {path.stem}"


def test_sweep_modules_stay_small():
    sizes = {p.name: len(p.read_text().splitlines()) for p in SWEEP.glob("*.py")}
    assert max(sizes.values()) < MAX_LINES, {n: s for n, s in sizes.items() if s >= MAX_LINES}


def test_every_exported_name_stays_what_it_was_once_all_submodules_are_imported():
    # What the package exports is never shadowed by one of its submodules (importing
    # sweep/x.py binds `x` on the package): without a module-class hack to undo it.
    import importlib
    import types

    import attempt_dist.sweep as sweep

    before = {name: getattr(sweep, name) for name in sweep.__all__}
    for path in SWEEP.glob("*.py"):
        if path.stem != "__init__":
            importlib.import_module(f"{PACKAGE}.{path.stem}")
    after = {name: getattr(sweep, name) for name in sweep.__all__}
    assert after == before
    assert not [name for name, value in after.items() if isinstance(value, types.ModuleType)]
    assert type(sweep) is types.ModuleType
