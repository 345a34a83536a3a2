"""The SDK's shape: no two of its modules import each other (even round a
circle, even inside a function), and `Client` and `AsyncClient` offer the
same calls with the same parameters."""

import ast
import inspect
import pathlib

import taskd

PACKAGE = pathlib.Path(taskd.__file__).parent


def _imports(path: pathlib.Path) -> set:
    """The SDK modules a module imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("taskd"):
            if node.module == "taskd":
                found.update(f"taskd.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("taskd."))
    return found


def _graph() -> dict:
    modules = {f"taskd.{path.stem}": path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    return {name: {target for target in _imports(path) if target in modules and target != name} for name, path in modules.items()}


def _circles(graph: dict) -> list:
    """Every module that reaches itself through its imports."""
    def reaches(start, goal, seen):
        for target in graph[start]:
            if target == goal:
                return True
            if target not in seen:
                seen.add(target)
                if reaches(target, goal, seen):
                    return True
        return False

    return sorted(name for name in graph if reaches(name, name, set()))


def test_no_two_modules_of_the_sdk_import_each_other():
    graph = _graph()
    assert "taskd.submitter" in graph["taskd.client"], "the reader sees imports"
    assert _circles(graph) == []


def _calls(cls) -> dict:
    return {name: member for name, member in inspect.getmembers(cls) if not name.startswith("_") and callable(member)}


def test_client_and_async_client_offer_the_same_calls():
    sync, asynchronous = _calls(taskd.Client), _calls(taskd.AsyncClient)
    assert sorted(set(sync) ^ set(asynchronous)) == [], "a call one client has and the other lacks"
    for name in sync:
        assert list(inspect.signature(sync[name]).parameters) == list(
            inspect.signature(asynchronous[name]).parameters
        ), f"{name} takes other parameters in Client and AsyncClient"
