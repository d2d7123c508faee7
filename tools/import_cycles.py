"""Print the import cycles among ``rubik.*`` modules; exit 1 if there is any.

Reads each module's imports with ``ast`` (nothing is imported). By default only the imports that
run when the module is imported count: those at module level and in class bodies, not those
inside functions nor under ``if TYPE_CHECKING:``. ``--all`` counts the function-level ones too
(the whole dependency graph: a cycle there is one held apart only by a lazy import).

    python tools/import_cycles.py            # no output, exit 0: no cycle
    python tools/import_cycles.py --all      # the same over every import
    python tools/import_cycles.py --lazy     # list the function-level imports of rubik modules
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "rubik"


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """``{"rubik.models.arch": path}`` for every ``.py`` under ``rubik/``."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(body, in_function: bool, out: list) -> None:
    """``(node, in_function)`` for every import statement in ``body`` (TYPE_CHECKING blocks skipped)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append((node, in_function))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            _walk(node.body, True, out)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            _walk(node.orelse, in_function, out)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                _walk(getattr(node, field, None) or [], in_function, out)


def imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """``[(imported rubik module, line, in_function)]`` of one module."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    found: list = []
    _walk(tree.body, False, found)
    out = []
    for node, lazy in found:
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from pkg import sub`` imports the submodule pkg.sub; ``from mod import name`` imports mod
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        for t in targets:
            while t and t not in modules:   # ``import rubik.models.arch`` -> rubik.models.arch; a.b.func -> a.b
                t = t.rpartition(".")[0]
            if t and t != name and (t == PACKAGE or t.startswith(PACKAGE + ".")):
                out.append((t, node.lineno, lazy))
    return out


def graph(include_lazy: bool = False, root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: {t for t, _, lazy in imports(name, path, modules) if include_lazy or not lazy}
            for name, path in modules.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return sorted(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--all", action="store_true", help="count function-level imports too")
    p.add_argument("--lazy", action="store_true", help="list the function-level rubik imports, per module")
    a = p.parse_args(argv)
    if a.lazy:
        modules = module_files()
        for name, path in modules.items():
            lazy = sorted({(line, t) for t, line, is_lazy in imports(name, path, modules) if is_lazy})
            if lazy:
                print(f"{len(lazy):3d} {name}: " + ", ".join(f"{t}@{line}" for line, t in lazy))
        return 0
    found = cycles(graph(include_lazy=a.all))
    for comp in found:
        print("cycle: " + " <-> ".join(comp))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
