"""scripts/stackset: the same template.yaml always makes the same stackset.yaml, whatever the
hash seed; it carries over what template.yaml gains (drift rules, SAM events) and the result
still passes the StackSet rules; and it refuses what it cannot adapt instead of writing it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs
from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "tests" / "cfnlint_rules"

_spec = importlib.util.spec_from_file_location("stackset", ROOT / "scripts" / "stackset.py")
assert _spec and _spec.loader
stackset = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stackset)


def variant(tmp_path: Path, change) -> Path:
    """template.yaml with ``change`` applied to its long form, written as JSON."""
    template = stackset.load(ROOT / "template.yaml")
    change(template)
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    return path


def generated(path: Path) -> dict:
    """A generated template, read back as cfn-lint reads it (short tags in their long form)."""
    template, problems = decode_str(stackset.generate(path))
    assert not problems, problems
    return json.loads(json.dumps(template))


def test_the_output_does_not_depend_on_the_hash_seed() -> None:
    outputs = set()
    # scripts/ is where stackset.py is found, before whatever PYTHONPATH held already.
    path = os.pathsep.join(filter(None, [str(ROOT / "scripts"), os.environ.get("PYTHONPATH")]))
    for seed in ("0", "1", "4242"):
        done = subprocess.run(
            [sys.executable, "-W", "ignore", "-c",
             "import stackset; print(stackset.generate(), end='')"],
            cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": path},
            capture_output=True, text=True, check=True)
        outputs.add(done.stdout)
    assert outputs == {(ROOT / "stackset.yaml").read_text()}


def test_drift_rules_and_sam_events_are_carried_over(tmp_path: Path) -> None:
    def add_rules(template: dict) -> None:
        function = template["Resources"]["Function"]["Properties"]
        function.setdefault("Events", {})["Daily"] = {
            "Type": "Schedule", "Properties": {"Schedule": "rate(1 day)"},
        }
        template["Resources"]["PolicyChanged"] = {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventPattern": {"source": ["aws.ecr"]},
                "Targets": [{"Id": "provider", "Arn": {"Fn::GetAtt": ["Function", "Arn"]}}],
            },
        }

    path = variant(tmp_path, add_rules)
    resources = generated(path)["Resources"]
    rules = sorted(n for n, r in resources.items() if r["Type"] == "AWS::Events::Rule")
    # template.yaml's own drift rules (SAM events), and the two added here.
    assert rules == [
        "FunctionDaily", "FunctionDriftSweep", "FunctionPolicyCalls", "PolicyChanged",
    ]
    text = stackset.generate(path)
    config = ManualArgs(regions=["us-east-1"], append_rules=[str(RULES)])
    assert [(m.rule.id, m.message) for m in lint(text, config=config)] == []


def test_a_fixed_name_gets_the_region(tmp_path: Path) -> None:
    def name_the_role(template: dict) -> None:
        template["Resources"]["FunctionRole"]["Properties"]["RoleName"] = "provider-role"

    role = generated(variant(tmp_path, name_the_role))["Resources"]["FunctionRole"]
    assert role["Properties"]["RoleName"] == {"Fn::Sub": "provider-role-${AWS::Region}"}


def test_a_parameter_without_a_default_is_refused(tmp_path: Path) -> None:
    def drop_default(template: dict) -> None:
        del template["Parameters"]["PublicAccess"]["Default"]

    with pytest.raises(stackset.AdaptError, match="PublicAccess"):
        stackset.generate(variant(tmp_path, drop_default))


def test_inline_code_is_refused(tmp_path: Path) -> None:
    def inline(template: dict) -> None:
        properties = template["Resources"]["Function"]["Properties"]
        del properties["CodeUri"]
        properties["InlineCode"] = "exit 0"

    with pytest.raises(stackset.AdaptError, match="CodeUri"):
        stackset.generate(variant(tmp_path, inline))
