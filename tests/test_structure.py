"""The house's walls: layers import downward only, no circles, small functions with few positional arguments.

Read from the source with `ast` (nothing is imported or run), so a structural regression fails here with the
file and line, before anyone has to find it in a picture.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# what each product package may import of ours (itself always); simulation/ is imported by none of them
MAY_IMPORT = {
    "features": set(),
    "validation": {"features"},
    "models": {"features", "validation"},
    "policy": {"features", "models"},
    "training": {"features", "models", "validation", "review"},
    "scoring": {"features", "models", "policy", "validation"},
    "review": {"features", "models", "policy", "scoring", "validation"},
}
COMMANDS = ("__main__.py",)  # a package's command sits on top of every layer, as train.py and score.py do
OURS = {*MAY_IMPORT, "simulation", "bench"}
MAX_LINES, MAX_POSITIONAL = 80, 8


def _modules():
    for package in MAY_IMPORT:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield package, path, ast.parse(path.read_text(), filename=str(path))


def _imports(tree: ast.AST):
    """(line, module, names) of every import, at any depth (lazy imports inside functions count too)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []


def test_layers_import_downward_only_and_never_the_simulator():
    wrong = []
    for package, path, tree in _modules():
        if path.name in COMMANDS:
            continue
        for line, module, _ in _imports(tree):
            top = module.split(".")[0]
            if top in OURS and top != package and top not in MAY_IMPORT[package]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_private_name_crosses_a_package():
    wrong = []
    for package, path, tree in _modules():
        for line, module, names in _imports(tree):
            top = module.split(".")[0]
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            if top in OURS and top != package and private:
                wrong.append(f"{path.relative_to(ROOT)}:{line} takes {', '.join(private)} from {module}")
    assert not wrong, "\n".join(wrong)


def test_no_circle_between_files():
    graph: dict[str, set[str]] = {}
    for _, path, tree in _modules():
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = {t for _, m, names in _imports(tree) if m.split(".")[0] in MAY_IMPORT
                       for t in _targets(m, names) if t != name}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("circle: " + " -> ".join([*trail[trail.index(nxt):], nxt]))
            if nxt in graph and not state.get(nxt):
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [node])


def _targets(module: str, names: list[str]) -> list[str]:
    """The files an import reads: `from features import kernels` reads features/kernels.py, not the package."""
    subs = [f"{module}.{n}" for n in names if (ROOT / module.replace(".", "/") / f"{n}.py").exists()]
    return subs or [module]


def _compiled(fn: ast.FunctionDef) -> bool:
    return any("jit" in ast.unparse(d) for d in fn.decorator_list)


def test_functions_are_short_and_take_few_positional_arguments():
    wrong = []
    paths = [p for package in [*MAY_IMPORT, "bench"] for p in sorted((ROOT / package).rglob("*.py"))]
    paths += [ROOT / "train.py", ROOT / "score.py"]
    for path in paths:
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) or _compiled(fn):
                continue
            lines = fn.end_lineno - fn.lineno + 1
            args = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args] if a.arg not in ("self", "cls")]
            where = f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name}"
            if lines > MAX_LINES:
                wrong.append(f"{where}: {lines} lines")
            if len(args) > MAX_POSITIONAL:
                wrong.append(f"{where}: {len(args)} positional parameters (make the rest keyword-only)")
    assert not wrong, "\n".join(wrong)
