"""Prefix statements (CONTRACT 15), end to end: the provider's real binary behind the Runtime
API emulator, ECR (DescribeRepositories included) and the lock table from moto, the fault
proxy between them. Twenty repositories under `team/`, two beside it; the console's and
Lambda's statements on some of them. Every step leaves those as they were, and the
repositories beside the prefix untouched. ECR and the lock table are read from moto directly.
"""

from __future__ import annotations

from rig.asserts import assert_failed, assert_statements, assert_success
from rig.constants import failed_create_id
from rig.events import follow_up, prefix_create, prefix_data, prefix_id, stack_statement

UNDER = [f"team/svc-{n:02d}" for n in range(18)] + ["team/a/b", "team/web"]
BESIDE = ["team-x", "other/team"]
# The console's statement and Lambda's grant are on these before any stack.
SHARED = ["team/svc-00", "team/a/b", "team-x"]
CONFLICTING = "team/svc-07"


def _prepare(cloud) -> dict[str, list]:
    for name in UNDER + BESIDE:
        cloud.create_repository(name)
    return {name: cloud.seed_others(name) for name in SHARED}


def test_a_prefix_statement_over_twenty_repositories_through_its_life(cloud, start):
    others = _prepare(cloud)
    provider = start()
    mine = stack_statement("team/svc-00", "TeamPull", 1)

    # A Sid that another grant has in one repository, with other content: the Create fails
    # naming it, and every repository is left as it was.
    theirs = {**stack_statement(CONFLICTING, "TeamPull", 9)}
    cloud.set_policy(CONFLICTING, {"Version": "2012-10-17", "Statement": [theirs]})
    before = {name: cloud.repository_policy(name) for name in UNDER + BESIDE}
    refused = prefix_create("team", [mine], "TeamPull")
    out = provider.send(refused)
    assert_failed(
        out, failed_create_id(refused), f'repository "{CONFLICTING}"', 'prefix "team"',
        "taken out again",
    )
    assert {name: cloud.repository_policy(name) for name in UNDER + BESIDE} == before
    cleanup = provider.send(follow_up(refused, "Delete", physical_id=failed_create_id(refused)))
    assert_success(cleanup, failed_create_id(refused), {})
    assert {name: cloud.repository_policy(name) for name in UNDER + BESIDE} == before

    # Without the conflict: every repository under the prefix holds the statement, each a
    # target of its own in the lock table; nothing beside the prefix changes.
    cloud.forget(CONFLICTING)
    created = prefix_create("team/", [mine], "TeamPull")
    out = provider.send(created)
    physical_id = prefix_id(created)
    assert_success(out, physical_id, prefix_data(created, len(UNDER)))
    assert out.calls("SetRepositoryPolicy") == len(UNDER), out.describe()
    for name in UNDER:
        assert_statements(cloud, name, others.get(name, []), [mine])
        assert cloud.holders(name) == {"TeamPull": created["RequestId"]}, name
    assert_statements(cloud, "team-x", others["team-x"], [])
    assert cloud.policy("other/team") is None

    # An Update in place reaches a repository created since, and keeps the others'.
    cloud.create_repository("team/new")
    changed = stack_statement("team/svc-00", "TeamPull", 2)
    update = follow_up(
        created, "Update", physical_id=physical_id,
        properties={**created["ResourceProperties"], "Statement": [changed]},
    )
    assert_success(provider.send(update), physical_id, prefix_data(update, len(UNDER) + 1))
    for name in [*UNDER, "team/new"]:
        assert_statements(cloud, name, others.get(name, []), [changed])
    assert cloud.holders("team/new") == {"TeamPull": created["RequestId"]}

    # The stack's Delete: out of every repository it held, the others' statements stay.
    delete = provider.send(follow_up(update, "Delete", physical_id=physical_id))
    assert_success(delete, physical_id, {})
    for name in [*UNDER, "team/new"]:
        assert_statements(cloud, name, others.get(name, []), [])
        assert cloud.holders(name) == {}, name
    assert_statements(cloud, "team-x", others["team-x"], [])


# Repository creation templates (CONTRACT 15), served by the stand-in for ECR's template
# operations in front of moto (rig.moto_templates): a template at or under the prefix is one
# more target; the ROOT template only a ROOT statement reaches.
TEMPLATES_REACHED = ["team", "team/a/"]
TEMPLATES_NOT_REACHED = ["ROOT", "team-x", "other/team"]
# Every field a template has besides its policy, set on "team/a/": the provider changes none.
TEMPLATE_FIELDS = {
    "description": "pull-through cache for team/a",
    "appliedFor": ["PULL_THROUGH_CACHE", "REPLICATION"],
    "customRoleArn": "arn:aws:iam::123456789012:role/ecr-template-role",
    "imageTagMutability": "IMMUTABLE",
    "lifecyclePolicy": '{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}',
    "resourceTags": [{"Key": "team", "Value": "a"}],
    "encryptionConfiguration": {"encryptionType": "AES256"},
}


def _settings(cloud) -> dict[str, dict]:
    """Every template's fields but its policy and when it last changed."""
    kept = {}
    for prefix in TEMPLATES_REACHED + TEMPLATES_NOT_REACHED + ["team/new"]:
        try:
            template = cloud.template(prefix)
        except cloud.ecr.exceptions.TemplateNotFoundException:
            continue
        kept[prefix] = {k: v for k, v in template.items() if k not in ("repositoryPolicy", "updatedAt")}
    return kept


def _everything(cloud) -> dict[str, str | None]:
    targets = UNDER + BESIDE + [f"template:{p}" for p in TEMPLATES_REACHED + TEMPLATES_NOT_REACHED]
    return {target: cloud.policy(target) for target in targets}


def test_creation_templates_at_or_under_the_prefix_through_a_life(cloud, start):
    others = _prepare(cloud)
    cloud.create_template("team")
    cloud.create_template("team/a/", **TEMPLATE_FIELDS)
    for prefix in TEMPLATES_NOT_REACHED:
        cloud.create_template(prefix)
    others["template:team"] = cloud.seed_others("template:team")
    others["template:team-x"] = cloud.seed_others("template:team-x")
    settings = _settings(cloud)
    provider = start()
    mine = stack_statement("team/svc-00", "TeamPull", 1)

    # Another grant of the Sid in one template: the Create fails naming that template, and
    # every repository and template is left as it was.
    theirs = stack_statement("team/svc-00", "TeamPull", 9)
    cloud.set_policy("template:team/a/", {"Version": "2012-10-17", "Statement": [theirs]})
    before = _everything(cloud)
    refused = prefix_create("team", [mine], "TeamPull")
    out = provider.send(refused)
    assert_failed(
        out, failed_create_id(refused), 'repository creation template "team/a/"',
        'prefix "team"', "and 2 creation templates", "taken out again",
    )
    assert _everything(cloud) == before
    cleanup = provider.send(follow_up(refused, "Delete", physical_id=failed_create_id(refused)))
    assert_success(cleanup, failed_create_id(refused), {})
    assert _everything(cloud) == before

    # Without the conflict: the repositories and the two templates hold the statement, each
    # template a target of its own in the lock table; no other template changes, and no
    # template's other settings.
    cloud.forget("template:team/a/")
    created = prefix_create("team/", [mine], "TeamPull")
    out = provider.send(created)
    physical_id = prefix_id(created)
    assert_success(out, physical_id, prefix_data(created, len(UNDER), templates="team,team/a/"))
    assert out.calls("UpdateRepositoryCreationTemplate") == 2, out.describe()
    for prefix in TEMPLATES_REACHED:
        target = f"template:{prefix}"
        assert_statements(cloud, target, others.get(target, []), [mine])
        assert cloud.holders(target) == {"TeamPull": created["RequestId"]}, prefix
    assert_statements(cloud, "template:team-x", others["template:team-x"], [])
    for prefix in ["ROOT", "other/team"]:
        assert cloud.policy(f"template:{prefix}") is None, prefix
    assert _settings(cloud) == settings

    # An Update in place reaches a template created since, and keeps the others' statements.
    cloud.create_template("team/new")
    settings = _settings(cloud)
    changed = stack_statement("team/svc-00", "TeamPull", 2)
    update = follow_up(
        created, "Update", physical_id=physical_id,
        properties={**created["ResourceProperties"], "Statement": [changed]},
    )
    expected = prefix_data(update, len(UNDER), templates="team,team/a/,team/new")
    assert_success(provider.send(update), physical_id, expected)
    for prefix in TEMPLATES_REACHED + ["team/new"]:
        target = f"template:{prefix}"
        assert_statements(cloud, target, others.get(target, []), [changed])

    # The stack's Delete: out of every template it held; the others' statements stay, a
    # template left with none has no policy, and every template is still there as it was.
    delete = provider.send(follow_up(update, "Delete", physical_id=physical_id))
    assert_success(delete, physical_id, {})
    assert_statements(cloud, "template:team", others["template:team"], [])
    for prefix in ["team/a/", "team/new"]:
        assert cloud.policy(f"template:{prefix}") is None, prefix
        assert cloud.holders(f"template:{prefix}") == {}, prefix
    assert _settings(cloud) == settings


def test_only_a_root_statement_reaches_the_root_template(cloud, start):
    _prepare(cloud)
    for prefix in TEMPLATES_REACHED + TEMPLATES_NOT_REACHED:
        cloud.create_template(prefix)
    provider = start()
    mine = stack_statement("team/svc-00", "EveryonePull", 3)
    created = prefix_create("ROOT", [mine], "EveryonePull")
    out = provider.send(created)
    every = sorted(TEMPLATES_REACHED + TEMPLATES_NOT_REACHED)
    # Every repository, the rig's own besides the ones above.
    repositories = len(cloud.ecr.describe_repositories()["repositories"])
    assert repositories >= len(UNDER + BESIDE)
    assert_success(
        out, prefix_id(created), prefix_data(created, repositories, templates=",".join(every))
    )
    for prefix in every:
        assert_statements(cloud, f"template:{prefix}", [], [mine])


def test_the_creation_template_stand_in_answers_as_ecrs_model_says(cloud):
    """rig.moto_templates, through boto3 (botocore's model of ECR): Describe pages with
    maxResults and nextToken, an update changes only what it names, an empty policy reads as
    none, and the model's errors come back by name."""
    cloud.prepare()
    ecr = cloud.ecr
    for n in range(7):
        cloud.create_template(f"svc-{n}/")
    cloud.create_template("team/a/", **TEMPLATE_FIELDS)
    first = ecr.describe_repository_creation_templates(maxResults=3)
    assert len(first["repositoryCreationTemplates"]) == 3 and first["nextToken"]
    pages = list(
        ecr.get_paginator("describe_repository_creation_templates").paginate(
            PaginationConfig={"PageSize": 3}
        )
    )
    listed = [t["prefix"] for page in pages for t in page["repositoryCreationTemplates"]]
    assert len(pages) == 3 and listed == sorted([f"svc-{n}/" for n in range(7)] + ["team/a/"])
    assert "nextToken" not in pages[-1]

    before = cloud.template("team/a/")
    policy = '{"Version":"2012-10-17","Statement":[]}'
    ecr.update_repository_creation_template(prefix="team/a/", repositoryPolicy=policy)
    after = cloud.template("team/a/")
    assert after["repositoryPolicy"] == policy
    assert {k: v for k, v in after.items() if k not in ("repositoryPolicy", "updatedAt")} == {
        k: v for k, v in before.items() if k != "updatedAt"
    }
    ecr.update_repository_creation_template(prefix="team/a/", repositoryPolicy="")
    assert "repositoryPolicy" not in cloud.template("team/a/")

    for call, error in [
        (lambda: ecr.update_repository_creation_template(prefix="nobody", repositoryPolicy=policy),
         "TemplateNotFoundException"),
        (lambda: ecr.describe_repository_creation_templates(prefixes=["nobody"]),
         "TemplateNotFoundException"),
        (lambda: cloud.create_template("team/a/"), "TemplateAlreadyExistsException"),
        (lambda: ecr.update_repository_creation_template(prefix="team/a/", repositoryPolicy="{"),
         "InvalidParameterException"),
    ]:
        try:
            call()
        except ecr.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == error, e
        else:
            raise AssertionError(f"no {error}")
    ecr.delete_repository_creation_template(prefix="team/a/")
    left = ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
    assert [t["prefix"] for t in left] == [f"svc-{n}/" for n in range(7)]
