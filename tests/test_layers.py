"""explorer/ is layered: a module imports only from its own group or the groups below it (docs/architecture.md), so
there are no cycles between groups and no group reaches up. Lazy imports inside functions count too."""

import ast
from pathlib import Path

EXPLORER = Path(__file__).resolve().parents[1] / "explorer"
LAYERS = (  # bottom first; the root modules are groups of their own
    ("settings", "process", "uncertainty"), ("spec",), ("record",), ("store",), ("measure",), ("data",), ("models",),
    ("present",), ("run",), ("__main__",))
RANK = {group: rank for rank, groups in enumerate(LAYERS) for group in groups}


def _group(module: str) -> str | None:
    """The group of an explorer module ('explorer.store.cache' -> 'store'); None outside explorer."""
    parts = module.split(".")
    return parts[1] if parts[0] == "explorer" and len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def upward_imports(root: Path = EXPLORER) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == root:
            continue
        source = _group("explorer." + ".".join(path.relative_to(root).with_suffix("").parts))
        for line, module in _imports(path):
            target = _group(module)
            if target is not None and RANK[target] > RANK[source]:
                found.append(f"{path.relative_to(root.parent)}:{line} ({source}) imports {module} ({target})")
    return found


def test_every_explorer_module_has_a_layer():
    groups = {p.stem if p.parent == EXPLORER else p.relative_to(EXPLORER).parts[0] for p in EXPLORER.rglob("*.py")}
    assert groups - {"__init__"} == set(RANK)


def test_no_module_imports_from_a_layer_above_its_own():
    assert upward_imports() == []


def test_the_check_finds_an_upward_import(tmp_path):
    fake = tmp_path / "explorer"
    (fake / "store").mkdir(parents=True)
    (fake / "store" / "cache.py").write_text("def f():\n    from explorer.run import search\n")
    assert upward_imports(fake) == ["explorer/store/cache.py:2 (store) imports explorer.run.search (run)"]


def outside_imports(root: Path, refused: tuple[str, ...]) -> list[str]:
    """Imports of the top-level packages `refused` anywhere under root (lazy ones too)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for line, module in _imports(path):
            if module.split(".")[0] in refused:
                found.append(f"{path.relative_to(root.parent)}:{line} imports {module}")
    return found


def test_explorer_never_imports_the_pages_the_app_or_the_benchmarks():
    assert outside_imports(EXPLORER, ("pages", "app", "benchmarks", "tests")) == []


def test_pages_import_explorer_and_their_own_helpers_but_no_benchmark_or_test():
    assert outside_imports(EXPLORER.parent / "pages", ("benchmarks", "tests", "app")) == []


def test_the_outside_check_finds_one(tmp_path):
    fake = tmp_path / "explorer"
    fake.mkdir()
    (fake / "spec.py").write_text("def f():\n    import pages.ui.knobs\n")
    assert outside_imports(fake, ("pages",)) == ["explorer/spec.py:2 imports pages.ui.knobs"]
