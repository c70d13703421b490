"""The dependency direction: linkage/ knows nothing of HTTP or the service."""

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
FORBIDDEN = ("service", "fastapi", "starlette", "uvicorn", "cli")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_linkage_never_imports_the_service_or_http() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / "linkage").rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
    }
    assert not offenders


def test_service_never_reaches_into_splink() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / "service").rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] in {"splink", "duckdb"}
    }
    assert not offenders
