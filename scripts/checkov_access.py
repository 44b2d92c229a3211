"""Who gets in, compared with an outside reader (issue 16): every case of
tests/access-cases.json becomes an AWS::ECR::Repository in one template, checkov's ECR public
check (CKV_AWS_32) reads it, and each verdict must be the one the table records. Where checkov
and the provider disagree on public, the table says why (src/diagnosis/access.rs checks that
it does); here, a verdict that changes (a newer checkov) fails, so the table is looked at again.

Usage: python scripts/checkov_access.py <checkov executable>. Run by scripts/checkov."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CASES = Path(__file__).resolve().parent.parent / "tests" / "access-cases.json"
CHECK = "CKV_AWS_32"


def statement_of(case: dict[str, Any]) -> dict[str, Any]:
    """A case's statement, as src/diagnosis/access.rs builds it."""
    statement: dict[str, Any] = {"Effect": case.get("effect", "Allow"), "Action": "ecr:BatchGetImage"}
    for field, key in (("principal", "Principal"), ("not_principal", "NotPrincipal"),
                       ("condition", "Condition")):
        if field in case:
            statement[key] = case[field]
    return statement


def template(cases: list[dict[str, Any]]) -> dict[str, Any]:
    resources = {
        f"Case{i:02d}": {
            "Type": "AWS::ECR::Repository",
            "Properties": {"RepositoryPolicyText": {"Version": "2012-10-17",
                                                    "Statement": [statement_of(case)]}},
        }
        for i, case in enumerate(cases)
    }
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}


def verdicts(checkov: str, cases: list[dict[str, Any]]) -> dict[int, str]:
    """checkov's verdict for each case it answered, by index."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "access-cases.json"
        path.write_text(json.dumps(template(cases)), encoding="utf-8")
        run = subprocess.run(
            [checkov, "-f", str(path), "--framework", "cloudformation", "--check", CHECK,
             "--skip-download", "--output", "json"],
            capture_output=True, text=True, check=False,
        )
    results = json.loads(run.stdout)["results"]
    found: dict[int, str] = {}
    for verdict, key in (("PASSED", "passed_checks"), ("FAILED", "failed_checks")):
        for result in results[key]:
            found[int(result["resource"].rsplit(".Case", 1)[1])] = verdict
    return found


def main() -> int:
    cases = json.loads(CASES.read_text(encoding="utf-8"))["cases"]
    found = verdicts(sys.argv[1], cases)
    changed = []
    for i, case in enumerate(cases):
        verdict = found.get(i, "none")
        if verdict != case["checkov"]:
            changed.append(f"  {case['name']}: checkov now says {verdict}, the table {case['checkov']}")
    disagreements = [c for c in cases if "checkov_wrong" in c]
    print(f"{CHECK} over {len(cases)} cases of {CASES.name}: {len(cases) - len(disagreements)} "
          f"agree with the provider, {len(disagreements)} do not, each explained there")
    if changed:
        print("checkov's verdicts changed; update tests/access-cases.json:\n" + "\n".join(changed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
