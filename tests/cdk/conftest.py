"""Paths and runs shared by the CDK constructs' Python-side tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "cdk"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
# The Node runtime under jsii warns on every start that Node 20 reaches its end of life.
ENV = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}


def run(*argv: str | Path, **kwargs) -> subprocess.CompletedProcess:
    """A command that must succeed; its output is shown when it does not."""
    done = subprocess.run([str(a) for a in argv], cwd=ROOT, env=ENV, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} exited {done.returncode}\n{done.stdout}\n{done.stderr}", pytrace=False)
    return done


@pytest.fixture(scope="session")
def wheel() -> Path:
    """The wheel scripts/cdk built (cdk/dist/python): exactly one."""
    found = sorted((CDK / "dist" / "python").glob("*.whl"))
    assert len(found) == 1, f"expected one wheel in cdk/dist/python, found {found}: run scripts/cdk test"
    return found[0]


# scripts/stackset.py (the SAM translation) and the rig (tests/rig) are imported by name.
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))
