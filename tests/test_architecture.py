"""The shape of the code, read from its syntax (nothing is imported).

(a) no import cycles among the `agent` modules (module-level imports; a package importing its own
    submodules is fine); (b) no function-level imports of the project's own modules, except the
    listed ones; (c) no `task ==` / `task !=` comparisons outside agent/tasks/, except the listed
    ones. The allow-lists may only shrink: a new entry fails the test, and so does a stale one.
"""

from __future__ import annotations

import ast
from collections import Counter
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (file, imported module) → why it stays a function-level import.
LAZY_IMPORTS: dict[tuple[str, str], str] = {}

# (file, number of `task ==` / `task !=` comparisons): the per-kind code belongs in agent/tasks/.
TASK_COMPARISONS: dict[str, int] = {
    "agent/cli.py": 1,  # `--task` and `--spec` given together must name the same kind
    "agent/spec.py": 2,  # the contract model requires the shape its task names (chat, rag)
}


def _sources() -> list[Path]:
    return [*sorted((ROOT / "agent").rglob("*.py")), ROOT / "app.py"]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in _sources()}


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_package(name: str) -> bool:
    return _modules()[name].name == "__init__.py"


def _targets(node: ast.Import | ast.ImportFrom, here: str, packages: bool = True) -> set[str]:
    """The project modules an import statement loads (`from agent.x import y` is `agent.x.y`
    when y is a submodule, else `agent.x`; either way the packages around it too)."""
    mods = _modules()
    if isinstance(node, ast.Import):
        names = {a.name for a in node.names}
    else:
        base = node.module or ""
        if node.level:
            pkg = here.split(".") if _is_package(here) else here.split(".")[:-1]
            pkg = pkg[: len(pkg) - (node.level - 1)]
            base = ".".join([*pkg, base] if base else pkg)
        names = set()
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            names.add(sub if sub in mods else base)
    found = set()
    for name in names:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        # importing agent.x.y runs agent/x/__init__.py first: that is an import of agent.x too
        while name in mods:
            found.add(name)
            name = name.rpartition(".")[0] if packages else ""
    # ... except of the importer's own packages, which Python has begun importing already (a
    # package's __init__ importing its own submodules is how packages are built)
    return {m for m in found if not here.startswith(m + ".")}


def _module_level(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports run when the module is imported: top level, and inside top-level if/try blocks
    (not `if TYPE_CHECKING:`)."""
    out: list[ast.Import | ast.ImportFrom] = []

    def walk(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                out.append(stmt)
            elif isinstance(stmt, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(stmt.test):
                    walk(stmt.body)
                walk(stmt.orelse)
            elif isinstance(stmt, ast.Try):
                for part in (stmt.body, stmt.orelse, stmt.finalbody):
                    walk(part)
                for handler in stmt.handlers:
                    walk(handler.body)
            elif isinstance(stmt, ast.With):
                walk(stmt.body)

    walk(tree.body)
    return out


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in _modules().items():
        deps: set[str] = set()
        for node in _module_level(_tree(path)):
            deps |= _targets(node, name)
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def lazy_imports() -> set[tuple[str, str]]:
    """(file, module) for every import of a project module that is not run at import time."""
    found: set[tuple[str, str]] = set()
    for name, path in _modules().items():
        tree = _tree(path)
        top = {id(n) for n in _module_level(tree)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top:
                for target in _targets(node, name, packages=False):
                    found.add((_rel(path), target))
    # `if TYPE_CHECKING:` imports are never run: they are not lazy imports
    for name, path in _modules().items():
        for stmt in _tree(path).body:
            if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
                for node in ast.walk(stmt):
                    if isinstance(node, ast.Import | ast.ImportFrom):
                        for target in _targets(node, name, packages=False):
                            found.discard((_rel(path), target))
    return found


def task_comparisons() -> Counter[str]:
    """`task == …` / `task != …` (a name or attribute called task, or `….get("task")`/`["task"]`)
    outside agent/tasks/."""

    def is_task(expr: ast.expr) -> bool:
        if isinstance(expr, ast.Name):
            return expr.id == "task"
        if isinstance(expr, ast.Attribute):
            return expr.attr == "task"
        if isinstance(expr, ast.Subscript):
            return isinstance(expr.slice, ast.Constant) and expr.slice.value == "task"
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
            return (
                expr.func.attr == "get"
                and bool(expr.args)
                and isinstance(expr.args[0], ast.Constant)
                and expr.args[0].value == "task"
            )
        return False

    counts: Counter[str] = Counter()
    for path in _sources():
        rel = _rel(path)
        if rel.startswith("agent/tasks/"):
            continue
        for node in ast.walk(_tree(path)):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            for i, op in enumerate(node.ops):
                if isinstance(op, ast.Eq | ast.NotEq) and (
                    is_task(operands[i]) or is_task(operands[i + 1])
                ):
                    counts[rel] += 1
    return counts


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles among agent modules:\n" + "\n".join(
        " ↔ ".join(c) for c in found
    )


def test_no_new_function_level_imports_of_project_modules() -> None:
    found = lazy_imports()
    new = sorted(found - LAZY_IMPORTS.keys())
    stale = sorted(LAZY_IMPORTS.keys() - found)
    assert not new, "function-level imports of project modules (move them to the top):\n" + (
        "\n".join(f"{f}: {m}" for f, m in new)
    )
    assert not stale, "no longer lazy — remove from LAZY_IMPORTS:\n" + "\n".join(
        f"{f}: {m}" for f, m in stale
    )


def test_no_task_comparisons_outside_tasks() -> None:
    found = task_comparisons()
    grown = {f: n for f, n in found.items() if n > TASK_COMPARISONS.get(f, 0)}
    shrunk = {f: n for f, n in TASK_COMPARISONS.items() if found.get(f, 0) < n}
    assert not grown, (
        "`task ==` / `task !=` outside agent/tasks/ (dispatch through agent.tasks instead): "
        f"{grown}"
    )
    assert not shrunk, f"fewer comparisons than allowed — lower TASK_COMPARISONS to {dict(found)}"


def test_the_reader_sees_the_known_shapes() -> None:
    """The checks above would pass vacuously if the reader missed imports."""
    graph = import_graph()
    assert "agent.graph.nodes" in graph["agent.graph.graph"]
    assert "agent.config" in graph["agent.graph.publish"]
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
