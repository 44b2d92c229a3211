"""Who gets in (CONTRACT 12, issue 16), end to end: the real binary behind the Runtime API
emulator, ECR, S3 and the lock table from moto behind the fault proxy. A public statement is
refused in under two seconds with no ECR call; AllowPublicAccess: true, or the provider
deployed with PUBLIC_ACCESS=Allow, lets it through; Data.Access says who gets in, for whole
and statement resources; an Update of a public policy that predates the check is kept."""

from __future__ import annotations

import copy

from rig.asserts import assert_failed, assert_success
from rig.constants import failed_create_id, repository_arn
from rig.events import (
    desired,
    follow_up,
    replication_statement,
    repository_create,
    statement_create,
    statements_data,
    statements_id,
    with_policy,
)
from rig.faultproxy import ECR_ANY

# The goal the issue sets for a refusal: answered in under this.
REFUSED_SECONDS = 2.0

# The ECR documentation's first repository policy example: "Allow all AWS accounts to pull
# images".
PULL = ["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", "ecr:BatchCheckLayerAvailability"]
EVERYONE = {"Sid": "AllowPull", "Effect": "Allow", "Principal": "*", "Action": PULL}
ORGANIZATION = {**EVERYONE, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}


def public_create() -> dict:
    return with_policy(repository_create(), [copy.deepcopy(EVERYONE)], version="2008-10-17")


def test_a_public_policy_is_refused_in_seconds_before_any_ecr_call(cloud, start):
    provider = start()
    event = public_create()
    out = provider.send(event, deadline_in=180.0)
    assert_failed(
        out,
        failed_create_id(event),
        f"{repository_arn('app')} allows public access: statement 1 (Sid \"AllowPull\") lets "
        'in every AWS account: its Principal is "*"',
        '"aws:PrincipalOrgID"',
        "set AllowPublicAccess: true",
    )
    assert out.seconds < REFUSED_SECONDS, out.describe()
    assert out.calls(ECR_ANY) == 0, out.describe()
    assert cloud.repository_policy("app") is None


def test_for_all_values_is_refused_saying_use_string_equals(cloud, start):
    provider = start()
    statement = {**EVERYONE, "Condition": {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}
    event = with_policy(repository_create(), [statement])
    out = provider.send(event, deadline_in=180.0)
    assert_failed(out, failed_create_id(event), "aws:PrincipalOrgID has one value, so use StringEquals")
    assert out.calls(ECR_ANY) == 0, out.describe()


def test_allow_public_access_lets_it_through(cloud, start):
    provider = start()
    event = public_create()
    event["ResourceProperties"]["AllowPublicAccess"] = "true"
    out = provider.send(event, deadline_in=180.0)
    response = assert_success(out, repository_arn("app"))
    assert response["Data"]["Access"] == "public"
    assert response["Data"]["PolicyText"] == desired(event)
    assert cloud.repository_policy("app") == desired(event)


def test_a_provider_deployed_with_public_access_allow_lets_it_through(cloud, start):
    provider = start(PUBLIC_ACCESS="Allow")
    event = public_create()
    out = provider.send(event, deadline_in=180.0)
    response = assert_success(out, repository_arn("app"))
    assert response["Data"]["Access"] == "public"
    assert cloud.repository_policy("app") == desired(event)


def test_data_access_names_the_organization_and_the_statement_resources_own(cloud, start):
    provider = start()
    event = with_policy(repository_create(), [copy.deepcopy(ORGANIZATION)])
    out = provider.send(event, deadline_in=180.0)
    response = assert_success(out, repository_arn("app"))
    assert response["Data"]["Access"] == "organization:o-a1b2c3d4e5"

    # A statement resource reports its own statements only, not the others' beside them.
    others = cloud.seed_others("registry")
    created = statement_create("registry", replication_statement("Team", "444455556666", "team"))
    out = provider.send(created, deadline_in=180.0)
    assert_success(out, statements_id(created), statements_data(created))
    assert out.response["Data"]["Access"] == "accounts:444455556666"
    assert len(cloud.statements("registry")) == len(others) + 1


def test_an_update_of_a_public_policy_that_predates_the_check_is_kept(cloud, start):
    provider = start()
    event = public_create()
    cloud.set_policy("app", desired(event))
    update = follow_up(event, "Update", physical_id=repository_arn("app"))
    out = provider.send(update, deadline_in=180.0)
    response = assert_success(out, repository_arn("app"))
    assert "kept as it is, because the live policy already holds it" in response["Data"]["Warnings"]
    assert out.calls("SetRepositoryPolicy") == 0, out.describe()
    assert any(line.get("message") == "policy warning" for line in out.log), out.describe()

    # What would change is judged: refused, nothing written.
    changed = copy.deepcopy(update)
    changed["ResourceProperties"]["PolicyText"]["Statement"][0]["Action"] = "ecr:BatchGetImage"
    out = provider.send(changed, deadline_in=180.0)
    assert_failed(out, repository_arn("app"), "allows public access")
    assert out.calls("SetRepositoryPolicy") == 0, out.describe()
    assert cloud.repository_policy("app") == desired(event)
