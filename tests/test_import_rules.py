"""The import rules of the map in docs/architecture.md, checked by walking the syntax
trees of src/dockyard: every `import` and `from ... import`, at module level or inside a
function (a lazy import is still a dependency). Imports under `if TYPE_CHECKING:` are
annotations only; they count for the layering rules but not for cycles, which are about
what must load before what."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dockyard
from dockyard.features import FEATURES

SRC = Path(dockyard.__file__).parent
# The packages that are features (`dockyard/<name>/feature.py`, listed in features.py).
FEATURE_PACKAGES = frozenset(p.parent.name for p in SRC.glob("*/feature.py"))
# The registry's kernel with its stores and its API: what the features plug into.
KERNEL = ("core", "auth", "events", "metadata", "storage", "api")
# The assembly: what reads FEATURES and wires everything; it may import anything, and
# sits above every package, so it is left out of the cycle check.
ASSEMBLY = frozenset(
    {
        "__main__",
        "app",
        "background",
        "cli",
        "features",
        "migration",
        "server",
        "services",
        "worker",
    }
)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. dockyard.core.manifests
    target: str  # the imported module (or module.name), e.g. dockyard.common.errors
    type_only: bool  # under `if TYPE_CHECKING:`


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_only: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        inner = type_only or (isinstance(child, ast.If) and _is_type_checking(child))
        yield child, inner
        yield from _walk(child, inner)


def imports() -> list[Import]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node, type_only in _walk(ast.parse(path.read_text()), False):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                    ).rstrip(".")
                targets = [f"{base}.{alias.name}" for alias in node.names]
            found.extend(
                Import(module, target, type_only)
                for target in targets
                if target.startswith("dockyard.")
            )
    return found


def top(module: str) -> str:
    """The top-level package (or module) of `dockyard.x.y`: `x`."""
    return module.split(".")[1]


def _from(package: str) -> list[Import]:
    return [i for i in imports() if top(i.module) == package]


def test_every_feature_package_is_listed_in_features() -> None:
    assert {feature.name for feature in FEATURES} == FEATURE_PACKAGES


def test_the_kernel_imports_no_feature_nor_anything_above_it() -> None:
    """Core, auth and events: features plug into them through hooks and collaborators
    handed in (`core/policies.py`, `uploads.StorageLimit`, `AccessLimits`)."""
    above = FEATURE_PACKAGES | ASSEMBLY | {"api", "feature"}
    wrong = [i for kernel in ("core", "auth", "events") for i in _from(kernel)]
    assert [i for i in wrong if top(i.target) in above] == []


def test_no_module_of_the_kernel_or_its_api_imports_a_feature() -> None:
    """The stores and the kernel's API too: a feature adds its middleware, metrics and
    request recorders through the seam (`Feature.middleware`, `collectors`, `recorders`),
    so the server's own modules never name one."""
    wrong = [i for package in KERNEL for i in _from(package)]
    assert [i for i in wrong if top(i.target) in FEATURE_PACKAGES] == []


def test_core_and_auth_do_not_import_each_other() -> None:
    wrong = [i for i in _from("core") if top(i.target) == "auth"]
    wrong += [i for i in _from("auth") if top(i.target) == "core"]
    assert wrong == []


def test_no_api_module_imports_metadata() -> None:
    """Neither the kernel's API (`api/`) nor a feature's (`<feature>/api/`): they call
    core, auth and the features' services, which own their queries."""
    wrong = [
        i for i in imports() if "api" in i.module.split(".")[1:] and top(i.target) == "metadata"
    ]
    assert wrong == []


def test_no_cycles_between_packages() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for i in imports():
        source, target = top(i.module), top(i.target)
        if i.type_only or source == target or {source, target} & ASSEMBLY:
            continue
        graph[source].add(target)
    cycles = []
    for start in sorted(graph):
        path = [start]
        stack = [iter(sorted(graph[start]))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                path.pop()
            elif nxt == start:
                cycles.append([*path, start])
            elif nxt not in path and nxt > start:
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    assert cycles == []
