"""Every account, every region (CONTRACT 14): stackset.yaml rolled out to an organization by a
service-managed StackSet, on moto's Organizations, CloudFormation and S3 (moto deploys each
instance's resources into the member account for real; the function's code is never run).

GIVEN an OU with two member accounts, the artifact buckets of artifact-buckets.yaml in two
regions and the code uploaded by `make package`; WHEN the StackSet deploys to the OU in both
regions, THEN every instance is CURRENT and each account and region holds the function (its
code read from that region's bucket), its lock table, its role and its rules; an update with
a new ArtifactKey reaches every function; an account moved out of the OU loses its instances.

What moto lacks, and what stands in for it:
- an UpdateStackSet only records the new parameters; rig.moto_stacksets updates each
  instance's stack as CloudFormation does (moto's own stack update does the work);
- auto-deployment: an account that leaves the OU keeps its instances in moto (pinned below, so
  a moto that learns it fails here); the test then does what an operator does without it,
  DeleteStackInstances for that account (moto reads `Accounts`; CloudFormation, for a
  service-managed StackSet, `DeploymentTargets`: docs/org-rollout.md)."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import time
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from rig.constants import STACKSET
from rig.moto import Moto
from rig.procs import RigError, Run, end_marked
from rig.stacksets import (
    Deployed,
    artifact_buckets,
    deployed,
    organization,
    package,
    parameters,
    template_counts,
)

REGIONS = ["us-east-1", "eu-west-1"]
PREFIX = "acme-ecr-policy-provider"
STACK_SET = "ecr-policy-provider"
LIFETIME_SECONDS = 300


@pytest.fixture(scope="module")
def moto(tmp_path_factory) -> Iterator[Moto]:
    """moto's server on loopback, StackSet updates reaching the instances."""
    run = Run(tmp_path_factory.mktemp("stacksets"), LIFETIME_SECONDS)
    server = Moto(run, stacksets=True)
    try:
        server.wait_ready()
    except RigError as e:
        server.stop()
        pytest.fail(f"{e}\n(logs in {run.workdir})", pytrace=False)
    yield server
    server.stop()
    end_marked(run.marker)


def code_zip(path: Path, body: bytes) -> bytes:
    """A zip with `bootstrap` at its root (any bytes: moto never runs it)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("bootstrap", body)
    path.write_bytes(out.getvalue())
    return out.getvalue()


def code_sha256(data: bytes) -> str:
    """Lambda's CodeSha256 of a zip."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def assert_provider(found: Deployed, code: str) -> None:
    """One account and region holds the provider as stackset.yaml makes it, its code the zip
    whose CodeSha256 is ``code``."""
    where = f"{found.account} {found.region}"
    name = f"ecr-policy-provider-{found.region}"
    table = f"ecr-policy-provider-LockTable-{found.region}"
    role = f"ecr-policy-provider-FunctionRole-{found.region}"
    assert list(found.functions) == [name], where
    function = found.functions[name]
    assert function["CodeSha256"] == code, where
    assert found.tables == [table], where
    assert function["Environment"]["Variables"]["POLICY_LOCK_TABLE"] == table, where
    assert function["Role"] == found.roles[role], where
    assert found.counts() == template_counts(STACKSET), where
    for rule, targets in found.rules.items():
        lambdas = [t for t in targets if ":lambda:" in t]
        assert lambdas == [function["FunctionArn"]] * len(lambdas), f"{where} rule {rule}"


def assert_nothing(found: Deployed) -> None:
    where = f"{found.account} {found.region}"
    assert sum(found.counts().values()) == 0, (where, found)


def test_stackset_rolls_out_to_every_account_and_region(moto: Moto, tmp_path: Path) -> None:
    started = time.monotonic()
    # GIVEN an OU with two accounts, a bucket in each region and the code uploaded.
    org = organization(moto, members=2)
    first_account, leaving = org.accounts
    artifact_buckets(moto, org, PREFIX, REGIONS)
    v1 = code_zip(tmp_path / "v1.zip", b"provider v1")
    first = package(moto, REGIONS, PREFIX, str(tmp_path / "v1.zip"), "x86_64")
    key = f"ecr-policy-provider/{hashlib.sha256(v1).hexdigest()}.zip"
    assert first.parameters == {"ArtifactBucketPrefix": PREFIX, "ArtifactKey": key, "Architecture": "x86_64"}
    for region in REGIONS:
        stored = moto.client("s3", region).get_object(Bucket=f"{PREFIX}-{region}", Key=key)
        assert stored["Body"].read() == v1, region
    # A probe of which bucket each function reads: eu-west-1's copy is replaced by another
    # body under the same key, so a function's CodeSha256 names the bucket it was read from.
    probe = code_zip(tmp_path / "probe.zip", b"read from eu-west-1's bucket")
    moto.client("s3", "eu-west-1").put_object(Bucket=f"{PREFIX}-eu-west-1", Key=key, Body=probe)
    expected = {"us-east-1": code_sha256(v1), "eu-west-1": code_sha256(probe)}

    # WHEN the StackSet deploys to the OU in both regions.
    cloudformation = moto.client("cloudformation")
    cloudformation.create_stack_set(
        StackSetName=STACK_SET,
        TemplateBody=STACKSET.read_text(),
        PermissionModel="SERVICE_MANAGED",
        AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=parameters(**first.parameters),
    )
    operation = cloudformation.create_stack_instances(
        StackSetName=STACK_SET, DeploymentTargets={"OrganizationalUnitIds": [org.ou]}, Regions=REGIONS
    )["OperationId"]
    status = cloudformation.describe_stack_set_operation(StackSetName=STACK_SET, OperationId=operation)
    assert status["StackSetOperation"]["Status"] == "SUCCEEDED"

    # THEN an instance in every account and region, each CURRENT, each holding the provider.
    instances = cloudformation.list_stack_instances(StackSetName=STACK_SET)["Summaries"]
    everywhere = sorted(itertools.product(org.accounts, REGIONS))
    assert sorted((i["Account"], i["Region"]) for i in instances) == everywhere
    assert {i["Status"] for i in instances} == {"CURRENT"}
    for account, region in everywhere:
        assert_provider(deployed(moto, account, region), expected[region])
    # Nothing in the management account: service-managed StackSets do not deploy there.
    assert_nothing(deployed(moto, "123456789012", "us-east-1"))

    # WHEN a new build is packaged and the StackSet updated with its key, THEN it reaches
    # every instance.
    v2 = code_zip(tmp_path / "v2.zip", b"provider v2")
    second = package(moto, REGIONS, PREFIX, str(tmp_path / "v2.zip"), "x86_64")
    assert second.parameters["ArtifactKey"] == f"ecr-policy-provider/{hashlib.sha256(v2).hexdigest()}.zip"
    assert second.parameters["ArtifactKey"] != key
    cloudformation.update_stack_set(
        StackSetName=STACK_SET,
        UsePreviousTemplate=True,
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[
            {"ParameterKey": "ArtifactKey", "ParameterValue": second.parameters["ArtifactKey"]},
            {"ParameterKey": "ArtifactBucketPrefix", "UsePreviousValue": True},
            {"ParameterKey": "Architecture", "UsePreviousValue": True},
        ],
        DeploymentTargets={"OrganizationalUnitIds": [org.ou]},
        Regions=REGIONS,
    )
    for account, region in everywhere:
        assert_provider(deployed(moto, account, region), code_sha256(v2))

    # WHEN an account moves out of the OU, THEN it loses its instances.
    organizations = moto.client("organizations")
    organizations.move_account(AccountId=leaving, SourceParentId=org.ou, DestinationParentId=org.root)
    kept = cloudformation.list_stack_instances(StackSetName=STACK_SET)["Summaries"]
    # moto has no auto-deployment (CloudFormation would remove them now): the operator's step.
    assert sorted((i["Account"], i["Region"]) for i in kept) == everywhere
    cloudformation.delete_stack_instances(
        StackSetName=STACK_SET, Accounts=[leaving], Regions=REGIONS, RetainStacks=False
    )
    left = cloudformation.list_stack_instances(StackSetName=STACK_SET)["Summaries"]
    assert sorted((i["Account"], i["Region"]) for i in left) == sorted((first_account, r) for r in REGIONS)
    for region in REGIONS:
        assert_nothing(deployed(moto, leaving, region))
        assert_provider(deployed(moto, first_account, region), code_sha256(v2))

    print(f"\nrollout: make package {first.seconds:.2f} s and {second.seconds:.2f} s for "
          f"{len(REGIONS)} regions; the whole test {time.monotonic() - started:.1f} s")
