"""The package's layers, read from the source: no import runs back up a layer.

core (catalog, traits, questions, images, models, network, inference, safety, result, io) < data_prep
(the dataset stages, built on the core) < engine (data, training, metrics, calibration, evaluation,
trust, field_eval) < serving (predictor, ONNX, UI, Space bundle: built on the core only, never the
engine) < the command lines (``python -m mushroom_id[.evaluate|.export|.space]``). Imports inside
functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mushroom_id"
LAYERS = {"core": 0, "engine": 1, "serving": 2}
COMMAND_LINES = {"mushroom_id.__main__", "mushroom_id.evaluate", "mushroom_id.export", "mushroom_id.space"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int | None:
    """0-2 for the layers, 3 for a command line, None for the package root."""
    if module in COMMAND_LINES:
        return 3
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def imports(path: Path, source: str | None = None) -> set[str]:
    """Every module ``path`` imports (absolute names; relative imports resolved)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(source if source is not None else path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # "from mushroom_id.core import models"
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_the_layers_exist():
    names = {module_name(p) for p in SOURCES}
    assert {"mushroom_id.core.models", "mushroom_id.engine.calibration", "mushroom_id.serving.predictor"} <= names
    assert COMMAND_LINES <= names


def check_layers(path: Path, source: str | None = None) -> None:
    me = module_name(path)
    mine = layer(me)
    for target in imports(path, source):
        if target.startswith("data_prep"):  # data_prep sits on the core: only the engine and above use it
            assert mine is None or mine >= 1, f"{me} imports {target}: data_prep is built on mushroom_id.core"
        if not target.startswith("mushroom_id.") or target == me:
            continue
        theirs = layer(target)
        if theirs == 3:
            assert mine == 3, f"{me} imports the command line {target}"
        if mine is not None and theirs is not None:
            assert theirs <= mine, f"{me} (layer {mine}) imports {target} (layer {theirs}): an arrow back up"
            # serving runs a trained model: it needs the core only, never the training/evaluation engine
            assert not (mine == LAYERS["serving"] and theirs == LAYERS["engine"]), f"{me} imports the engine ({target})"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_no_import_runs_up_a_layer(path):
    check_layers(path)


DATA_PREP = sorted((PACKAGE.parent / "data_prep").glob("*.py"))


@pytest.mark.parametrize("path", DATA_PREP, ids=lambda p: f"data_prep.{p.stem}")
def test_data_prep_is_built_on_the_core_only(path):
    for target in imports(path):
        if target.startswith("mushroom_id."):
            assert target.startswith("mushroom_id.core"), f"data_prep/{path.name} imports {target}: only the core"


def test_the_checker_sees_an_arrow_back_up():
    """The rule above can fail: a core module importing the predictor (even lazily), an engine
    module importing a command line, anything importing data_prep."""
    probe = PACKAGE / "core" / "probe.py"
    lazy = "def f():\n    from mushroom_id.serving.predictor import Predictor\n    return Predictor\n"
    with pytest.raises(AssertionError, match="arrow back up"):
        check_layers(probe, lazy)
    with pytest.raises(AssertionError, match="command line"):
        check_layers(PACKAGE / "engine" / "probe.py", "from mushroom_id.evaluate import main\n")
    with pytest.raises(AssertionError, match="data_prep"):
        check_layers(probe, "import data_prep.common\n")
    check_layers(PACKAGE / "engine" / "probe.py", "from data_prep.pipeline import prepare_folder\n")
    with pytest.raises(AssertionError, match="arrow back up"):
        check_layers(PACKAGE / "core" / "probe.py", "from ..engine import calibration\n")
    check_layers(PACKAGE / "serving" / "probe.py", "from mushroom_id.core import models\nfrom .onnx import OPSET\n")
    with pytest.raises(AssertionError, match="imports the engine"):
        check_layers(PACKAGE / "serving" / "probe.py", "from mushroom_id.engine.calibration import calibrate\n")
