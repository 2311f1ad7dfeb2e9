"""The import graph: stages never import the orchestrator; no two parts import each other.

The graph is read from the source with :mod:`ast` (every ``import`` statement,
function-level and ``TYPE_CHECKING`` ones included), so a lazy import inside a
function cannot hide a dependency.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import longtail

PACKAGE = Path(longtail.__file__).parent
ORCHESTRATOR = "daily"
# Third-party code kept as files (Great Expectations renderers), not the project's layering.
SKIP_PARTS = frozenset({"vendor"})


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(path: Path) -> set[str]:
    """Every ``longtail`` module ``path`` imports, relative imports resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            found.add(name)
            # ``from longtail import schema`` imports the module ``longtail.schema``.
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return {m for m in found if m.startswith("longtail.")}


def _part(module: str) -> str | None:
    """The top-level part a module belongs to (``longtail.train.driver`` -> ``train``)."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    name = parts[1]
    if (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file():
        return name
    return None


def _edges() -> dict[str, dict[str, list[str]]]:
    """part -> imported part -> the modules (with line-free names) where it happens."""
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PACKAGE.rglob("*.py")):
        if SKIP_PARTS & set(path.relative_to(PACKAGE).parts):
            continue
        source = _part(_module_name(path)) if path.parent != PACKAGE else path.stem
        if path == PACKAGE / "__init__.py" or source is None:
            continue
        for target in sorted(_imported(path)):
            part = _part(target)
            if part is not None and part != source:
                edges[source][part].append(_module_name(path))
    return edges


def test_the_graph_is_read_from_the_source() -> None:
    # A guard against a parser that finds nothing and so passes every check below.
    edges = _edges()
    assert "train" in edges[ORCHESTRATOR]
    assert "schema" in edges["train"]
    assert len(edges) >= 15


def test_no_stage_imports_the_orchestrator() -> None:
    edges = _edges()
    offenders = {
        part: sorted(set(targets[ORCHESTRATOR]))
        for part, targets in edges.items()
        if part != ORCHESTRATOR and ORCHESTRATOR in targets
    }
    assert offenders == {}, f"modules that import longtail.{ORCHESTRATOR}: {offenders}"


def test_no_two_parts_of_the_package_import_each_other() -> None:
    edges = _edges()
    pairs = sorted(
        (a, b, sorted(set(edges[a][b])), sorted(set(edges[b][a])))
        for a in edges
        for b in edges[a]
        if a < b and a in edges.get(b, {})
    )
    assert pairs == [], f"parts that import each other (a, b, modules a->b, modules b->a): {pairs}"


def test_the_import_graph_of_the_parts_has_no_cycle() -> None:
    edges = _edges()
    graph = {a: set(targets) for a, targets in edges.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*path, nxt]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if state.get(start) is None and visit(start, [start]):
            break
    assert cycle == [], f"import cycle between parts of the package: {' -> '.join(cycle)}"


def _ray_init_calls(path: Path) -> list[int]:
    """Lines of ``ray.init(...)`` calls in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "init"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "ray"
    ]


def test_only_ensure_ray_starts_ray() -> None:
    # Jobs and stages start Ray through longtail.ray_runtime.ensure_ray, so it always
    # comes up with the project's runtime environment and listening rules.
    repo = PACKAGE.parent.parent
    files = [*PACKAGE.rglob("*.py"), *(repo / "jobs").rglob("*.py")]
    calls = {
        str(path.relative_to(repo)): lines
        for path in files
        if path != PACKAGE / "ray_runtime.py" and (lines := _ray_init_calls(path))
    }
    assert _ray_init_calls(PACKAGE / "ray_runtime.py"), "ensure_ray itself calls ray.init"
    assert calls == {}


def _from_imports(path: Path) -> list[tuple[str, str]]:
    """``(module, name)`` of every ``from longtail... import name`` in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("longtail")
        for alias in node.names
    ]


def test_no_part_imports_private_names_of_another() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _part(_module_name(path))
        for module, name in _from_imports(path):
            if name.startswith("_") and _part(module) not in (None, source):
                offenders.append(f"{_module_name(path)}: from {module} import {name}")
    assert offenders == []


def test_tune_uses_the_public_train_api_only() -> None:
    # Tune trains through train's exported functions (one finishing path, train.finish),
    # so a change inside train cannot silently fork what tune judges from what daily trains.
    import longtail.train

    public = set(longtail.train.__all__)
    uses = [
        (str(path.relative_to(PACKAGE)), module, name)
        for path in sorted((PACKAGE / "tune").rglob("*.py"))
        for module, name in _from_imports(path)
        if _part(module) == "train"
    ]
    assert uses, "tune trains through longtail.train"
    assert [u for u in uses if u[1] != "longtail.train" or u[2] not in public] == []


# A string that names a file of one of these kinds ("report.html", "f/x.parquet",
# the constant parts of f"{run}/report.html"); a bare suffix (".parquet"), a glob
# ("*.parquet") or a sentence is not a name.
_FILE_NAME = re.compile(r"^[\w\-./=]*\w\.(parquet|json|html|txt|csv|png)$")
# Names outside paths.py that are not artifacts of the project, each with the reason.
_NOT_ARTIFACTS = {
    # The default input files of a RetailRocket source: what the user downloads,
    # read by ingest, never written by the project.
    ("config.py", "events.csv"),
    ("config.py", "category_tree.csv"),
    ("config.py", "item_category.csv"),
    ("config.py", "item_properties_part1.csv"),
    ("config.py", "item_properties_part2.csv"),
    # Great Expectations' own header logo, as its static site ships it: Data Docs
    # pages are pointed at it so they work offline.
    ("validation/offline.py", "images/logo-long.png"),
}


def _file_names(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of every string constant in ``path`` that looks like a file name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _FILE_NAME.match(node.value)
    ]


def test_the_file_name_check_sees_names_and_not_suffixes_or_globs(tmp_path: Path) -> None:
    # A guard against a pattern that matches nothing and so passes the check below.
    source = tmp_path / "m.py"
    source.write_text(
        'a = run / "report.html"\nb = f"{run_id}/best.json"\nc = "x/y=1/part-0.parquet"\n'
        'd = p.suffix == ".parquet"\ne = p.glob("*.parquet")\nf = "see report.html for more"\n',
        encoding="utf-8",
    )
    assert sorted(name for _, name in _file_names(source)) == [
        "/best.json",
        "report.html",
        "x/y=1/part-0.parquet",
    ]
    assert any(name == "current.json" for _, name in _file_names(PACKAGE / "paths.py"))


def test_no_artifact_file_name_is_written_outside_paths() -> None:
    # Where a stage writes and another reads is said once, by longtail.paths (Layout and
    # its path classes); a name written out elsewhere is a second place to change.
    found = [
        (str(path.relative_to(PACKAGE)), line, name)
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "paths.py" and not SKIP_PARTS & set(path.relative_to(PACKAGE).parts)
        for line, name in _file_names(path)
    ]
    allowed = {(f, n) for f, _, n in found if (f, n) in _NOT_ARTIFACTS}
    assert allowed == _NOT_ARTIFACTS, "an allowed name is gone: drop it from the list"
    assert [hit for hit in found if (hit[0], hit[2]) not in _NOT_ARTIFACTS] == []


MAX_FUNCTION_LINES = 80
# How a docstring says why a function stays long (the project's wordings).
_WHY_LONG = re.compile(
    r"\b(Long because|One function because|Kept as one function|Why this is one function)"
)


def _long_functions() -> list[tuple[str, int, int, bool]]:
    """``(function, lines, code lines, says why)`` of every library function over the limit.

    ``lines`` runs from ``def`` to the last line, docstring included; ``code lines``
    leaves the docstring out. Methods and nested functions count on their own.
    """
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if SKIP_PARTS & set(path.relative_to(PACKAGE).parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            end = node.end_lineno or node.lineno
            lines = end - node.lineno + 1
            doc = ast.get_docstring(node)
            body = node.body[1:] if doc is not None else node.body
            code = end - body[0].lineno + 1 if body else 0
            if lines > MAX_FUNCTION_LINES or code > MAX_FUNCTION_LINES:
                name = f"{_module_name(path)}.{node.name}:{node.lineno}"
                says_why = bool(_WHY_LONG.search(" ".join((doc or "").split())))
                found.append((name, lines, code, says_why))
    return found


def test_the_long_function_check_measures_functions() -> None:
    # A guard against a measure that finds nothing: run_epochs is long and says why.
    found = {name.split(":")[0]: (lines, why) for name, lines, _, why in _long_functions()}
    lines, why = found["longtail.train.worker.run_epochs"]
    assert lines > MAX_FUNCTION_LINES and why


def test_every_function_over_80_lines_says_why_in_its_docstring() -> None:
    # Over about 80 lines a function is hard to hold in one's head: split it, or say
    # (in its docstring: "Long because ...") why it reads better whole.
    unexplained = [f for f in _long_functions() if not f[3]]
    assert unexplained == [], (
        "functions over 80 lines (name, lines with docstring, lines of code, says why) "
        f"without a reason in their docstring: {unexplained}"
    )
