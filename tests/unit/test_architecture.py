"""Layering rules of DEVELOPERS.md that a refactor could silently break."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def modules_loaded_by(imports: str, watched: tuple[str, ...]) -> list[str]:
    """Which of `watched` a fresh interpreter has loaded after `import <imports>`."""
    code = f"import sys, {imports}; print(','.join(m for m in {watched!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [name for name in done.stdout.strip().split(",") if name]


def test_the_web_process_imports_no_torch_until_a_job_runs():
    assert modules_loaded_by("webapp.app, tasks.client", ("torch", "open_clip")) == []


def test_engine_imports_neither_celery_nor_gradio():
    imports = "engine.anomaly, engine.anomaly.outputs, engine.media, engine.loading"
    assert modules_loaded_by(imports, ("celery", "gradio", "tasks", "webapp")) == []


def project_imports() -> dict[str, set[str]]:
    """module -> the project modules it imports (at any level of its code), read from the sources."""
    import ast

    modules = {".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): path
               for package in ("engine", "tasks", "webapp") for path in (REPO / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            found |= {target for target in targets if target in modules}
        graph[name] = found - {name}
    return graph


TOOL_PACKAGES = ("engine.anomaly", "engine.completion", "engine.insertion", "engine.finetune")


def test_no_tool_package_imports_another():
    crossings = sorted(f"{module} imports {target}" for module, targets in project_imports().items()
                       for target in targets for tool in TOOL_PACKAGES
                       if module.startswith(tool) and target.startswith(TOOL_PACKAGES)
                       and not target.startswith(tool))
    assert crossings == []


def cycles_of(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*trail[trail.index(target):], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def unit_of(module: str) -> str:
    """A tool package counts as one unit: inside it, the torch-free contract's `run` imports the code that
    uses the contract's types (late, on purpose); elsewhere every module is its own unit."""
    return next((tool for tool in TOOL_PACKAGES if module == tool or module.startswith(tool + ".")), module)


def test_no_import_cycle_between_modules_or_tools():
    """Imports inside functions count too: a cycle there still ties two concepts together."""
    units: dict[str, set[str]] = {}
    for module, targets in project_imports().items():
        units.setdefault(unit_of(module), set()).update(unit_of(t) for t in targets if unit_of(t) != unit_of(module))
    assert cycles_of(units) == []


def test_the_job_api_loads_nothing_of_the_worker_side():
    assert modules_loaded_by("tasks.client", ("tasks.runner", "tasks.tools", "tasks.embedded")) == []
