"""Every code block of README.md is executed here, by these rules:

- ```python blocks run as they are, each in a fresh namespace, in an empty temporary folder.
  A block that imports an optional package which is not installed (dask, matplotlib, ...) is
  skipped, not failed.
- ```bash blocks: every command that starts with ``emfast`` runs, in README order, in one
  temporary folder (``emfast demo --save-data`` writes the file the later commands read), through
  the same ``main`` as the console script, and must exit with status 0. Commands joined by
  ``&&`` are looked at one by one. The other commands build, install or test emfast itself
  (``pip``, ``pytest``, ``python benchmarks/...``, ``bash ci/...``), which the test suite cannot
  run from inside itself: CI runs them (``.ci/run`` runs the quick start's install-and-test line,
  ``ci/build_wheel.sh`` the wheel lines). A command of any other kind fails this test, so each new
  kind gets a decision.
- ```text blocks show output. The table rows (lines starting with ``|``) of a text block that
  follows a bash block must appear in that bash block's output, so the numbers shown are real.
"""
import os
import re
import shlex

import pytest

from emfast._cli import main

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
NOT_RUN = ("pip", "pytest", "python", "bash", "cibuildwheel", "git")   # build/install/test emfast
OPTIONAL = {"dask", "distributed", "matplotlib", "pyarrow", "pandas", "sklearn"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _blocks():
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    return [(m.group(1), m.group(2), text[:m.start()].count("\n") + 1)
            for m in FENCE.finditer(text)]


def _commands(block):
    """(argv, line) of each command of a bash block, comments and ``\\`` continuations handled."""
    joined = block.replace("\\\n", " ")
    for line in joined.splitlines():
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            while words and ASSIGNMENT.match(words[0]):   # VAR=value prefixes
                words = words[1:]
            if words:
                yield words, part.strip()


def test_every_block_has_a_known_kind():
    kinds = [kind for kind, _, _ in _blocks()]
    assert "python" in kinds and "bash" in kinds
    unknown = sorted({k for k in kinds if k not in ("python", "bash", "text")})
    assert not unknown, f"README code blocks of unknown kind {unknown}: label them python, " \
                        "bash or text (see tests/test_readme.py)"


PYTHON = [(code, line) for kind, code, line in _blocks() if kind == "python"]


@pytest.mark.parametrize("code, line", PYTHON, ids=[f"line {line}" for _, line in PYTHON])
def test_python_block(code, line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    try:
        exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OPTIONAL:
            pytest.skip(f"README.md:{line} needs {exc.name}")
        raise
    finally:
        if "matplotlib.pyplot" in __import__("sys").modules:
            __import__("matplotlib.pyplot").pyplot.close("all")


def test_bash_blocks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ran, outputs = [], []
    for kind, code, line in _blocks():
        if kind == "text" and outputs:
            rows = [r for r in code.splitlines() if r.startswith("|")]
            missing = [r for r in rows if r not in outputs[-1]]
            assert not missing, f"README.md:{line} shows rows the command does not print: " \
                                f"{missing}"
        if kind != "bash":
            continue
        output = ""
        for words, text in _commands(code):
            if words[0] == "emfast":
                try:
                    status = main(words[1:])
                except SystemExit as exc:      # argparse rejected the command line
                    status = exc.code
                captured = capsys.readouterr()
                assert status == 0, f"README.md:{line}: `{text}` failed: {captured.err}"
                output += captured.out
                ran.append(text)
            else:
                assert os.path.basename(words[0]) in NOT_RUN, (
                    f"README.md:{line}: `{text}` is neither an emfast command nor a known "
                    f"build/test command {NOT_RUN}; decide how tests/test_readme.py treats it")
        outputs.append(output)
    assert "emfast demo" in ran                       # the quick start's first command
    assert any(c.startswith("emfast select") for c in ran)
