"""The package's shape: no import cycles between its files, and a wheel that carries what it needs.

The import graph counts every import of every module, the function-local ones too (a lazy
import hides a cycle, it does not remove it). The wheel is built from this
checkout, installed into a folder of its own and used from outside the checkout, as
``pip install .`` would leave it for a user.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "wav2vec_u"


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every wav2vec_u module a file imports, function-local imports included."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wav2vec_u"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in modules else node.module)
    return out


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PKG.rglob("*.py")}
    modules = set(files)
    return {m: imports_of(p, modules) - {m} for m, p in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = dfs(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = dfs(m)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_files():
    graph = import_graph()
    assert "wav2vec_u.train.trainer" in graph and graph["wav2vec_u.train.trainer"], "the graph was not read"
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_models_do_not_import_training_or_commands():
    graph = import_graph()
    for m, deps in graph.items():
        if m.startswith("wav2vec_u.models"):
            bad = {d for d in deps if d.startswith(("wav2vec_u.train", "wav2vec_u.demo")) or d.endswith("_command")}
            assert not bad, f"{m} imports {bad}"


def test_no_module_finds_files_through_the_source_tree():
    """Shipped files are found with io.resource_path, never by walking up from __file__ to the checkout."""
    offenders = []
    for p in PKG.rglob("*.py"):
        text = p.read_text(encoding="utf-8")
        for needle in ('"configs"', '"data" / "sentences"', "parents[2] / \"configs\""):
            if needle in text and "resource_path(" not in text:
                offenders.append(f"{p.relative_to(REPO)}: {needle}")
    assert not offenders


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(REPO)], check=True, capture_output=True, cwd=out)
    wheels = list(out.glob("wav2vec_u-*.whl"))
    assert len(wheels) == 1, wheels
    target = out / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheels[0])],
                   check=True, capture_output=True, cwd=out)
    return wheels[0]


def test_wheel_carries_configs_and_sentences(installed_wheel):
    names = set(zipfile.ZipFile(installed_wheel).namelist())
    for needed in ("wav2vec_u/resources/configs/demo/quick.yaml", "wav2vec_u/resources/configs/gan/w2vu.yaml",
                   "wav2vec_u/resources/configs/text/w2vu.yaml", "wav2vec_u/resources/data/sentences/en.txt",
                   "wav2vec_u/resources/data/sentences/es.txt", "wav2vec_u/demo/pipeline.py"):
        assert needed in names, f"{needed} is not in {installed_wheel.name}"
    assert not any(n.startswith(("tests/", "scripts/", "recipes/")) for n in names)


def test_installed_package_finds_its_defaults_outside_the_checkout(installed_wheel, tmp_path):
    target = installed_wheel.parent / "site"
    code = ("import argparse, wav2vec_u, pathlib\n"
            "from wav2vec_u.demo.demo_command import add_arguments, resolve_config\n"
            "from wav2vec_u.demo.pipeline import sentences_path\n"
            "from wav2vec_u.train.train_command import DEFAULT_CONFIG\n"
            "p = argparse.ArgumentParser(); add_arguments(p)\n"
            "cfg, out = resolve_config(p.parse_args(['--quick']))\n"
            "print(wav2vec_u.__file__); print(sentences_path(cfg)); print(DEFAULT_CONFIG.is_file()); print(cfg.corpus.num_train)\n")
    env = {**os.environ, "PYTHONPATH": str(target)}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    where, sentences, gan_default, num_train = res.stdout.split("\n")[:4]
    assert where.startswith(str(target)), f"imported {where}, not the installed copy"
    assert sentences.startswith(str(target)) and Path(sentences).is_file()
    assert gan_default == "True" and int(num_train) > 0


# Each concept has one implementation: the calls below may appear only in the module that owns them.
ONE_PLACE = {
    "kenlm.Model(": {"wav2vec_u/text/lm.py"},                                   # the one LM class
    "def lm_score(": {"wav2vec_u/train/selection.py"},                          # the one label-free metric
    "lm_score(": {"wav2vec_u/train/selection.py"},
    "def read_lexicon(": {"wav2vec_u/text/lexicon.py"},                         # the one lexicon reader
    "def load_lexicon(": set(),
    "def read_lengths(": {"wav2vec_u/audio/features_io.py"},                    # the one feature reader
    "def load_features(": {"wav2vec_u/audio/features_io.py"},
    "is_current(": {"wav2vec_u/stage.py"},                                      # the one stage-cache helper
    "mark_done(": {"wav2vec_u/stage.py"},
    "invalidate(": {"wav2vec_u/stage.py"},
    "def split_by_lengths(": {"wav2vec_u/tokens.py"},
    "faiss.Kmeans(": {"wav2vec_u/audio/segments.py"},                           # the one k-means
    "weights_only=False": {"wav2vec_u/io.py"},                                  # the one (opt-in) unsafe load
    '"<SIL>"': {"wav2vec_u/tokens.py"},
    "SAMPLE_RATE = ": {"wav2vec_u/audio/io.py"},
    "def _pad(": set(),
}


def code_of(path: Path) -> str:
    """The module's code without comments and docstrings (ast.unparse writes strings in single quotes)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            node.body = [n for n in body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                                                 and isinstance(n.value.value, str))] or [ast.Pass()]
    return ast.unparse(tree)


@pytest.mark.parametrize("needle", sorted(ONE_PLACE))
def test_one_implementation_per_concept(needle):
    variants = {needle, needle.replace('"', "'")}
    found = {str(p.relative_to(REPO)) for p in PKG.rglob("*.py") if any(v in code_of(p) for v in variants)}
    assert found <= ONE_PLACE[needle], f"{needle!r} also in {sorted(found - ONE_PLACE[needle])}"
