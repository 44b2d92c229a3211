"""The CDK constructs (cdk/), end to end: the sample app (cdk/test/apps/sample-app.ts: an
imported repository with two grants, a registry replication statement, a whole repository
policy with adopt) is synthesized, and every custom resource in its cdk.out is driven through
the provider's real binary, behind the Runtime API emulator, against moto, as CloudFormation
would drive them: the stack's create, an update to the app after an edit that changes
grantees, and the stack's delete. What the constructs write must be accepted, end up in ECR as
declared, and leave the console's statement and Lambda's grant where they were."""

from __future__ import annotations

import json
import time

import pytest

from rig import cdk
from rig.asserts import assert_statements, assert_success
from rig.constants import ACCOUNT, REGION, repository_arn
from rig.policies import compact

LEGACY = "legacy"
# Someone else's policy on the repository the app adopts whole.
LEGACY_BEFORE = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "Old", "Effect": "Allow",
                   "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "ecr:BatchGetImage"}],
}


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """The sample app synthesized before and after the edit, and how long each synth took."""
    cdk.build()
    out = {}
    for version in ("v1", "v2"):
        started = time.monotonic()
        out[version] = cdk.synth(tmp_path_factory.mktemp(f"cdk-{version}"), version)
        print(f"cdk synth of the sample app ({version}): {time.monotonic() - started:.1f} s")
    return out


def by_type(resources: dict[str, cdk.Resource], kind: str) -> list[cdk.Resource]:
    return [r for r in resources.values() if r.type == kind]


def declared(resources: dict[str, cdk.Resource], kind: str) -> list[dict]:
    return [s for r in by_type(resources, kind) for s in cdk.statements(r)]


def assert_ecr_holds(cloud, resources, others):
    """ECR holds what the app declares, beside the others' statements, exactly."""
    assert_statements(cloud, "app", others["app"], declared(resources, "Custom::ECRRepositoryPolicyStatement"))
    assert_statements(cloud, "registry", others["registry"],
                      declared(resources, "Custom::ECRRegistryPolicyStatement"))
    (whole,) = by_type(resources, "Custom::ECRRepositoryPolicy")
    assert json.loads(cloud.policy(LEGACY)) == whole.properties["PolicyText"]


def test_a_cdk_app_through_create_update_and_delete(cloud, start, templates):
    others = {"app": cloud.seed_others("app"), "registry": cloud.seed_others("registry")}
    cloud.create_repository(LEGACY)
    cloud.set_policy(LEGACY, LEGACY_BEFORE)
    provider = start()
    v1, v2 = (cdk.custom_resources(templates[v]) for v in ("v1", "v2"))
    assert sorted(r.type for r in v1.values()) == sorted([
        "Custom::ECRRegistryPolicyStatement", "Custom::ECRRepositoryPolicy",
        "Custom::ECRRepositoryPolicyStatement", "Custom::ECRRepositoryPolicyStatement",
    ])
    # The grants went to the imported repository, each with a Sid of its own.
    grants = by_type(v1, "Custom::ECRRepositoryPolicyStatement")
    assert {g.properties["RepositoryName"] for g in grants} == {"app"}
    assert len({s["Sid"] for g in grants for s in cdk.statements(g)}) == 2

    # The stack's create.
    ids, data = {}, {}
    for resource in v1.values():
        out = provider.send(cdk.event(resource, "Create"))
        response = assert_success(out, out.physical_id)
        ids[resource.logical_id], data[resource.logical_id] = out.physical_id, response["Data"]
    assert_ecr_holds(cloud, v1, others)
    # The whole policy took over the one that was there.
    (whole,) = by_type(v1, "Custom::ECRRepositoryPolicy")
    assert ids[whole.logical_id] == repository_arn(LEGACY)
    assert data[whole.logical_id]["Adopted"] == "true"
    assert data[whole.logical_id]["PolicyText"] == compact(whole.properties["PolicyText"])
    # Every attribute the constructs offer is in the response.
    for output in templates["v1"]["Outputs"]:
        logical_id, attribute = cdk.get_att(templates["v1"], output)
        assert attribute in data[logical_id], f"{output}: {attribute} not in {data[logical_id]}"
    (replication,) = by_type(v1, "Custom::ECRRegistryPolicyStatement")
    assert data[replication.logical_id]["Sids"] == "ReplicationFromTeam"
    assert data[replication.logical_id]["Access"] == "accounts:444455556666"
    assert data[replication.logical_id]["RegistryId"] == ACCOUNT
    assert data[replication.logical_id]["Region"] == REGION

    # The update: the pull grant goes to another account (a new resource, the old one deleted
    # in the cleanup phase); the replication statement and the whole policy are updated in place.
    change = cdk.change(v1, v2)
    assert [r.type for r in change.creates] == ["Custom::ECRRepositoryPolicyStatement"]
    assert [r.type for r in change.deletes] == ["Custom::ECRRepositoryPolicyStatement"]
    assert sorted(new.type for _, new in change.updates) == [
        "Custom::ECRRegistryPolicyStatement", "Custom::ECRRepositoryPolicy"]
    for resource in change.creates:
        out = provider.send(cdk.event(resource, "Create"))
        assert_success(out, out.physical_id)
        ids[resource.logical_id] = out.physical_id
    for old, new in change.updates:
        out = provider.send(cdk.event(new, "Update", physical_id=ids[new.logical_id], old=old))
        assert_success(out, ids[new.logical_id])  # in place: the same id
    for resource in change.deletes:
        out = provider.send(cdk.event(resource, "Delete", physical_id=ids.pop(resource.logical_id)))
        assert_success(out, out.event["PhysicalResourceId"], {})
    assert_ecr_holds(cloud, v2, others)
    assert "111122223333" not in cloud.policy("app")

    # The stack's delete: only the others' statements are left; the adopted policy goes.
    for resource in v2.values():
        out = provider.send(cdk.event(resource, "Delete", physical_id=ids[resource.logical_id]))
        assert_success(out, ids[resource.logical_id], {})
    assert_statements(cloud, "app", others["app"], [])
    assert_statements(cloud, "registry", others["registry"], [])
    assert cloud.policy(LEGACY) is None
