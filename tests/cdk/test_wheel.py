"""The Python package: the wheel jsii-pacmak built is installed into the project's .venv (beside
aws-cdk-lib from requirements-dev.lock) and synthesizes a small app written in Python."""

from __future__ import annotations

import json
import textwrap

from conftest import CDK, VENV_PYTHON, run

APP = textwrap.dedent(
    """
    import sys
    import aws_cdk as cdk
    from aws_cdk import aws_ecr as ecr, aws_iam as iam
    import ecr_policy_provider_cdk as epp

    app = cdk.App(outdir=sys.argv[1])
    stack = cdk.Stack(app, "PythonApp", env=cdk.Environment(account="123456789012", region="us-east-1"))
    repository = ecr.Repository.from_repository_name(stack, "App", "app")
    grant = epp.RepositoryPolicyGrants.from_repository(repository).pull(iam.AccountPrincipal("111122223333"))
    assert grant.success
    epp.RegistryPolicyStatement(stack, "Replication", statement=iam.PolicyStatement(
        sid="ReplicationFromTeam",
        principals=[iam.AccountPrincipal("444455556666")],
        actions=["ecr:CreateRepository", "ecr:ReplicateImage"],
        resources=["arn:aws:ecr:us-east-1:123456789012:repository/team/*"]))
    provider = epp.EcrPolicyProvider(stack, "Provider", drift_action=epp.DriftAction.RESTORE)
    provider.grant_pull_push(repository, iam.AccountPrincipal("777788889999"))
    app.synth()
    print(epp.__file__)
    """
)


def test_the_wheel_installs_into_the_venv_and_synthesizes_a_python_app(wheel, tmp_path):
    run(VENV_PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--force-reinstall", wheel)
    run(VENV_PYTHON, "-m", "pip", "check", "--disable-pip-version-check")
    (tmp_path / "app.py").write_text(APP)
    done = run(VENV_PYTHON, tmp_path / "app.py", tmp_path / "out")
    assert "/.venv/" in done.stdout, done.stdout

    template = json.loads((tmp_path / "out" / "PythonApp.template.json").read_text())
    resources = template["Resources"]
    kinds = sorted(r["Type"] for r in resources.values() if r["Type"].startswith("Custom::"))
    assert kinds == ["Custom::ECRRegistryPolicyStatement", "Custom::ECRRepositoryPolicyStatement",
                     "Custom::ECRRepositoryPolicyStatement"]
    by_sid = {r["Properties"]["Statement"][0]["Sid"]: r["Properties"] for r in resources.values()
              if r["Type"].startswith("Custom::")}
    pull = next(p for sid, p in by_sid.items() if sid.startswith("Pull111122223333"))
    # No provider named: the stack's default, the sam deploy stack's export.
    assert pull["ServiceToken"] == {"Fn::ImportValue": "ecr-policy-provider-ServiceToken"}
    assert pull["RepositoryName"] == "app"
    # Through the provider deployed in the app: its function's ARN.
    (function_id,) = [k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"]
    pull_push = next(p for sid, p in by_sid.items() if sid.startswith("PullPush777788889999"))
    assert pull_push["ServiceToken"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert resources[function_id]["Properties"]["Environment"]["Variables"]["DRIFT_ACTION"] == "Restore"
    # The function's zip is the package's own, staged as an asset.
    assets = json.loads((tmp_path / "out" / "PythonApp.assets.json").read_text())["files"]
    shipped = json.loads((CDK / "assets" / "manifest.json").read_text())["arm64"]["sha256"]
    assert any(a["source"]["packaging"] == "file" and a["source"]["path"].endswith(".zip") for a in assets.values())
    staged = [p for p in (tmp_path / "out").glob("asset.*.zip")]
    assert len(staged) == 1
    import hashlib

    assert hashlib.sha256(staged[0].read_bytes()).hexdigest() == shipped
