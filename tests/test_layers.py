"""Imports point one way, down the layers of the house, and importing the library changes nothing.

Every import of every module counts, including those inside functions: a lazy import still makes the
lower layer depend on the higher one.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module may import from its own layer or a lower tier, never from a higher tier, and
# layers side by side in one tier (forecasting, lra) never import each other. The data layer sits below
# forecasting: it reads, validates and windows series without knowing what model will consume them, and
# the LRA harness reuses its data directories.
TIERS = [
    {"kernel": ("lruts.errors", "lruts.lazy", "lruts.scan", "lruts.fast.kernels")},
    {"layer": ("lruts.lru",)},
    # lruts.fast runs a whole stack's step compiled: it packs a DeepLRU's weights for its kernels
    {"network": ("lruts.network", "lruts.fast")},
    # generic: trains, saves and tracks any model on any dataset; command-line flags from any config dataclass
    {"training": ("lruts.training", "lruts.optim", "lruts.io", "lruts.memory", "lruts.tracking", "lruts.cli")},
    {"data": ("lruts.data",)},
    {"forecasting": ("lruts.forecasting",), "lra": ("lruts.lra",)},
    # `lruts` itself is the package's front door: its names load lazily from the layers below
    {"entry": ("lruts", "pipelines", "dashboard", "benchmarks")},
]
PROJECT = ("lruts", "pipelines", "dashboard", "benchmarks")

KNOWN_EDGES: set[tuple[str, str]] = set()  # exemptions, each with its reason: none


def project_modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the library and its entry points."""
    modules = {}
    for top in PROJECT:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = project_modules()


def layer_of(module: str) -> tuple[int, str] | None:
    """(tier, layer) of a module: the longest listed prefix that names it. The package `lruts` is listed by
    itself, so a new module directly under it has no layer until one is chosen here."""
    best = None
    for tier, layers in enumerate(TIERS):
        for layer, prefixes in layers.items():
            for prefix in prefixes:
                names = module == prefix or (prefix != "lruts" and module.startswith(prefix + "."))
                if names and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), tier, layer)
    return None if best is None else best[1:]


def imported_modules(module: str, source: str, is_package: bool = False) -> set[str]:
    """Project modules that `source` (the text of `module`) imports anywhere, relative imports resolved."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                # `from lruts import step_kernel` imports the module lruts.step_kernel, not the package
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return {name for name in found if name.split(".")[0] in PROJECT}


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Every import of `module` that points up the layers or sideways across a tier, and every module
    that has no layer."""
    own = layer_of(module)
    if own is None:
        return [f"{module} has no layer: add it to TIERS in tests/test_layers.py"]
    found = []
    for target in sorted(imported_modules(module, source, is_package)):
        theirs = layer_of(target)
        if theirs is None:
            found.append(f"{module} imports {target}, which has no layer")
        elif theirs[1] != own[1] and theirs[0] >= own[0]:
            found.append(f"{module} ({own[1]}) imports {target} ({theirs[1]})")
    return found


def test_every_import_points_down_the_layers():
    found = [
        message
        for module, path in MODULES.items()
        for message in violations(module, path.read_text(), path.name == "__init__.py")
    ]
    known = {f"{a} ({layer_of(a)[1]}) imports {b} ({layer_of(b)[1]})" for a, b in KNOWN_EDGES}
    assert [message for message in found if message not in known] == []
    assert known <= set(found), "an edge in KNOWN_EDGES is gone: delete it there"


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("lruts.scan", "import torch\nfrom lruts.errors import ConfigError\n", []),
        ("lruts.lru", "from lruts import scan\nfrom lruts.errors import ShapeError\n", []),
        ("lruts.forecasting.net", "from . import metrics\nfrom ..network import DeepLRU\n", []),
        (
            "lruts.scan",
            "from lruts.forecasting.forecaster import LRUForecaster\n",
            ["lruts.scan (kernel) imports lruts.forecasting.forecaster (forecasting)"],
        ),
        (
            "lruts.training",
            "def loader():\n    from lruts.data import make_loader\n",
            ["lruts.training (training) imports lruts.data (data)"],
        ),
        (
            "lruts.lra.runner",
            "from ..forecasting import metrics\n",
            ["lruts.lra.runner (lra) imports lruts.forecasting.metrics (forecasting)"],
        ),
        ("lruts.lru", "import lruts\n", ["lruts.lru (layer) imports lruts (entry)"]),
        ("lruts.tuning", "", ["lruts.tuning has no layer: add it to TIERS in tests/test_layers.py"]),
    ],
)
def test_the_layer_check_flags_upward_sideways_and_unplaced_imports(module, source, expected):
    assert violations(module, source) == expected


def _in_fresh_python(code: str) -> dict:
    """What `code` prints as JSON, run in a new interpreter with the user's environment as it would be
    without the test session's settings (conftest opts out of MLflow telemetry for the session)."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_DISABLE_TELEMETRY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    return json.loads(out.stdout)


def test_import_lruts_scan_loads_torch_and_numba_but_no_data_tracking_or_forecasting():
    loaded = _in_fresh_python("import json, sys, lruts.scan; print(json.dumps(sorted(sys.modules)))")
    tops = {name.split(".")[0] for name in loaded}
    assert {"torch", "numba"} <= tops
    assert not tops & {"polars", "pandas", "pyarrow", "mlflow", "optuna", "streamlit"}
    assert sorted(name for name in loaded if name.split(".")[0] == "lruts") == [
        "lruts",
        "lruts.errors",
        "lruts.lazy",
        "lruts.scan",
    ]


def test_importing_the_library_leaves_the_environment_and_allocator_alone_and_mlflow_unloaded():
    # pyfunc and mlflow_model are MLflow's entry points into lruts: importing them means using mlflow
    plugins = {"lruts.forecasting.pyfunc", "lruts.forecasting.mlflow_model"}
    names = [m for m in MODULES if m.split(".")[0] == "lruts" and m not in plugins]
    # the base install's dependencies load before the snapshot: polars, for one, sets its allocator's
    # configuration in the environment at import, which is its doing, not ours
    dependencies = ["numba", "numpy", "pandas", "PIL", "polars", "pyarrow", "torch", "tqdm", "yaml"]
    code = (
        "import importlib, json, os, sys\n"
        f"for name in {dependencies!r}: importlib.import_module(name)\n"
        "before = dict(os.environ)\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "import lruts.memory\n"
        "changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))\n"
        "print(json.dumps({'changed': changed, 'mlflow': 'mlflow' in sys.modules, "
        "'allocator': lruts.memory._enabled}))\n"
    )
    assert _in_fresh_python(code) == {"changed": [], "mlflow": False, "allocator": False}
