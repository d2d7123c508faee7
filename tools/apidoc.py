"""Write docs/API.md from the package itself: every public name's signature and the first
paragraph of its docstring, module by module.

    python tools/apidoc.py            # rewrite docs/API.md (or: make api)
    python tools/apidoc.py --check    # exit 1 if docs/API.md differs from a fresh generation

Public: a module's ``__all__`` where it has one, else the functions, classes and UPPER_CASE
constants defined at its top level whose names do not start with ``_`` (in source order), and
the public methods and properties of those classes. Modules whose name starts with ``_`` and the
sub-command plumbing (``add_arguments``, ``main``: see ``rubik.cli``) are left out. Signatures show
the defaults the code has; nothing here is written by hand, so the file cannot drift from the code
(``tests/test_apidoc.py`` checks it is current).
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "API.md"
PACKAGE = "rubik"
SKIP_NAMES = {"add_arguments", "main"}
MAX_CONSTANT = 100   # longer constant values are named, not printed

HEADER = """\
# rubik API

Generated from the package by `python tools/apidoc.py` (`make api`): each module's idea (the first
paragraph of its docstring), then its public names with their signatures, as the code has them,
and the first paragraph of their docstrings. Do not edit by hand; `tests/test_apidoc.py` fails
when this file differs from a fresh generation. Details live in the docstrings themselves
(`help(rubik.launcher.run_sweep)`).

`import rubik` re-exports, lazily: {exports}.
"""


def modules(package: str = PACKAGE) -> list[str]:
    """The package's importable module names, sorted (private ones and ``__main__`` left out)."""
    pkg = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def first_paragraph(obj) -> str:
    """The first paragraph of ``obj``'s own docstring, on one line ("" if it has none)."""
    doc = vars(obj).get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)   # its own
    if not doc:
        return ""
    doc = inspect.cleandoc(doc)
    para = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0]
    return " ".join(para.split())


def _clean(text: str) -> str:
    """Machine-dependent bits of a repr out: memory addresses and this checkout's path."""
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", text)
    return text.replace(str(ROOT), "<repo>").replace(str(ROOT.parent), "<repo>/..")


class _Raw(str):
    """An annotation kept as source text (``from __future__ import annotations``), shown unquoted."""

    def __repr__(self):
        return str(self)


def _unquoted(sig: inspect.Signature) -> inspect.Signature:
    def raw(a):
        return _Raw(a) if isinstance(a, str) else a

    params = [p.replace(annotation=raw(p.annotation)) for p in sig.parameters.values()]
    return sig.replace(parameters=params, return_annotation=raw(sig.return_annotation))


def signature(obj, name: str) -> str:
    """``name(params) -> return`` as the code declares it ("" params for a class without its own
    ``__init__``; no ``-> None`` for a class)."""
    if inspect.isclass(obj) and not dataclasses.is_dataclass(obj) and obj.__init__ is object.__init__:
        return name
    try:
        sig = _unquoted(inspect.signature(obj))
    except (TypeError, ValueError):
        return name
    if inspect.isclass(obj):
        sig = sig.replace(return_annotation=inspect.Signature.empty)
    return _clean(f"{name}{sig}")


def _top_level(module) -> tuple[list[str], dict[str, str]]:
    """Public top-level names of ``module``'s source in order, and constants' docstrings (a string
    literal right after the assignment)."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return [], {}
    names, docs = [], {}
    body = tree.body
    for i, node in enumerate(body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ([t] if isinstance(t, ast.Name) else getattr(t, "elts", [])):
                    if isinstance(n, ast.Name) and n.id.isupper():
                        names.append(n.id)
                        nxt = body[i + 1] if i + 1 < len(body) else None
                        if (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                                and isinstance(nxt.value.value, str)):
                            docs[n.id] = nxt.value.value
    return [n for n in dict.fromkeys(names) if not n.startswith("_")], docs


def _members(cls) -> list[str]:
    """Public methods and properties defined in ``cls``'s own body (source order)."""
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if inspect.isfunction(value) or isinstance(value, property):
            out.append(name)
    return out


def _line(sig: str, doc: str, indent: str = "") -> str:
    return f"{indent}- `{sig}`" + (f": {doc}" if doc else "")


def describe(module_name: str) -> str:
    module = importlib.import_module(module_name)
    lines = [f"## `{module_name}`", ""]
    idea = first_paragraph(module)
    if idea:
        lines += [idea, ""]
    order, const_docs = _top_level(module)
    names = list(getattr(module, "__all__", order))
    if module_name == PACKAGE:
        names = ["__version__"]
    for name in names:
        if name in SKIP_NAMES or not hasattr(module, name):
            continue
        obj = getattr(module, name)
        home = getattr(obj, "__module__", module_name) if (inspect.isclass(obj) or callable(obj)) else module_name
        if home != module_name and (inspect.isclass(obj) or inspect.isfunction(obj)):
            lines.append(f"- `{name}`: from `{home}`")
            continue
        if inspect.isclass(obj):
            bases = [b.__name__ for b in obj.__bases__ if b is not object]
            doc = first_paragraph(obj)
            if doc.startswith(f"{name}("):   # a dataclass's generated docstring: its signature again
                doc = ""
            lines.append(f"- `class {signature(obj, name)}`" + (f" ({', '.join(bases)})" if bases else "")
                         + (f": {doc}" if doc else ""))
            for m in _members(obj):
                value = vars(obj)[m]
                if isinstance(value, property):
                    lines.append(_line(f".{m}", first_paragraph(value.fget), "  "))
                    continue
                func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
                sig = signature(func, "." + m).replace("(self, ", "(").replace("(self)", "()")
                sig = sig.replace("(cls, ", "(").replace("(cls)", "()")
                lines.append(_line(sig, first_paragraph(func), "  "))
        elif callable(obj):
            lines.append(_line(signature(obj, name), first_paragraph(obj)))
        else:
            text = _clean(repr(obj))
            shown = f"{name} = {text}" if len(text) <= MAX_CONSTANT and "\n" not in text else \
                f"{name}: {type(obj).__name__}"
            doc = " ".join(inspect.cleandoc(const_docs[name]).split()) if name in const_docs else ""
            lines.append(_line(shown, doc))
    return "\n".join(lines) + "\n"


def generate() -> str:
    pkg = importlib.import_module(PACKAGE)
    exports = ", ".join(f"`{n}`" for n in pkg.__all__ if n != "__version__")
    return HEADER.format(exports=exports) + "\n" + "\n".join(describe(m) for m in modules())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the file differs from a fresh generation")
    ap.add_argument("--out", default=str(OUT), help="the file to write or check (default docs/API.md)")
    args = ap.parse_args(argv)
    text, out = generate(), Path(args.out)
    if args.check:
        if not out.is_file() or out.read_text() != text:
            print(f"{out} is stale: run `python tools/apidoc.py` (make api)", file=sys.stderr)
            return 1
        return 0
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
