"""A stack's life, end to end on this machine: moto stands in for ECR, for CloudFormation's
response bucket and for the lock table, the provider's real binary runs behind `cargo lambda
watch`. For each step it prints the request, the response CloudFormation would receive, and
the policy now live in ECR. Then two stacks share one registry policy (a statement resource
each) while a statement added in the console stays, and one stack's Delete leaves the other's
and the console's. Then a policy open to every AWS account is refused, then accepted with
AllowPublicAccess: true, then limited to an organization. Last, drift: a console edit takes
a stack's grant out, and the CloudTrail record of that edit, handed to the same function as
EventBridge would, has it reported and put back (the demo's provider runs with
DRIFT_ACTION=Restore; the template's default is Report). Run it with scripts/demo (which
bootstraps and builds first, and puts tests/ on PYTHONPATH for the rig).

Exit status: 0 when every step ended as expected, 1 when one did not, 2 when the demo could
not start, 130 when interrupted. Everything it starts is stopped, Ctrl-C included."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable

from rig import show
from rig.asserts import assert_failed, assert_statements, assert_success, failure
from rig.cloud import Cloud, Function
from rig.constants import (
    EXISTING_REPOSITORY_POLICY,
    REGISTRY_ID,
    failed_create_id,
    others_policy,
    repository_arn,
)
from rig.events import (
    follow_up,
    in_stack,
    load_event,
    made_now,
    new_id,
    policy_of,
    replication_statement,
    statement_create,
    statements_id,
    statements_of,
    with_policy,
)
from rig.outcome import Outcome
from rig.policies import compact
from rig.procs import RigError, run_script

# Longer than the demo can take; the servers end by themselves after it.
LIFETIME_SECONDS = 300


class Demo:
    def __init__(self, cloud: Cloud, provider: Function):
        self.cloud = cloud
        self.provider = provider
        self.step = 0
        self.failures: list[str] = []

    def run(
        self,
        title: str,
        event: dict[str, Any],
        physical_id: str,
        show_live: list[str],
        *,
        failed: bool = False,
        check: Callable[[Outcome], None] = lambda outcome: None,
    ) -> Outcome:
        """One step: the event sent, the response and the live policies shown; the response
        must be SUCCESS (FAILED when ``failed``) with ``physical_id``, and ``check`` (which
        asserts) must pass."""
        self.step += 1
        print(f"\n=== {self.step}. {title} ===")
        show.request(event)
        outcome = self.provider.send(event)
        show.response(outcome)
        show.live(self.cloud, show_live)
        answered = assert_failed if failed else assert_success
        found = [failure(answered, outcome, physical_id)]
        if outcome.response is not None:
            found.append(failure(check, outcome))
        problems = [p.splitlines()[0] for p in found if p]
        if problems:
            self.failures += [f"step {self.step} ({title}): {p}" for p in problems]
            print("  UNEXPECTED:")
            for p in problems:
                print(f"    - {p}")
        else:
            print("  -> as expected")
        return outcome

    def delete(
        self, title: str, event: dict[str, Any], target: str, also_show: tuple[str, ...] = ()
    ) -> Outcome:
        """A Delete step: SUCCESS with the event's PhysicalResourceId, and ``target`` (the
        registry, or a repository) left with no policy."""

        def gone(outcome: Outcome) -> None:
            assert self.cloud.policy(target) is None, f"{target} still has a policy"

        show_live = [target, *also_show]
        return self.run(title, event, event["PhysicalResourceId"], show_live, check=gone)

    def refused(self, title: str, event: dict[str, Any], says: str) -> Outcome:
        """A Create refused before any write: FAILED with the failed-create id, a Reason that
        says ``says``, and repository app left with no policy."""
        return self.run(
            title,
            event,
            failed_create_id(event),
            ["app"],
            failed=True,
            check=lambda o: expect(
                says in o.reason and self.cloud.repository_policy("app") is None,
                f"the Reason does not say {says}, or ECR was written",
            ),
        )


def expect(ok: bool, otherwise: str) -> None:
    """A step's check: fails with ``otherwise`` unless ``ok``."""
    assert ok, otherwise


def registry_statements_are(
    cloud: Cloud, others: list[dict[str, Any]], own: list[dict[str, Any]]
) -> Callable[[Outcome], None]:
    """A step's check: the registry policy holds the others' statements as they were, then
    ``own``, and nothing else."""
    return lambda outcome: assert_statements(cloud, "registry", others, own)


def two_stacks(demo: Demo, cloud: Cloud) -> None:
    """Two stacks each add a replication source to the registry policy (a statement
    resource each) while a statement added in the console stays; one stack's Delete leaves
    the other's and the console's."""
    print("\n--- Two stacks, one registry policy ---")
    console = others_policy("registry")
    cloud.set_policy("registry", console)
    others = console["Statement"]
    print("  Someone added a statement to the registry policy in the console:")
    print(show.indent(show.pretty_policy(cloud.registry_policy()), 4))

    team_a = in_stack(load_event("registry-statement-create.json"), "team-a")
    team_b = in_stack(
        statement_create(
            "registry",
            [replication_statement("ReplicationFromTeamB", "444455556666", "team-b")],
            "TeamBReplication",
        ),
        "team-b",
    )
    own_a = statements_of(team_a["ResourceProperties"])
    own_b = statements_of(team_b["ResourceProperties"])
    steps = [
        ("Stack team-a adds its replication source (Custom::ECRRegistryPolicyStatement)",
         team_a, statements_id(team_a), own_a),
        ("Stack team-b adds its own to the same policy", team_b, statements_id(team_b),
         own_a + own_b),
        ("Delete stack team-a: its statement goes; team-b's and the console's stay",
         follow_up(team_a, "Delete", physical_id=statements_id(team_a)),
         statements_id(team_a), own_b),
    ]
    for title, event, physical_id, own in steps:
        check = registry_statements_are(cloud, others, own)
        demo.run(title, event, physical_id, ["registry"], check=check)


def public_access(demo: Demo, cloud: Cloud) -> None:
    """CONTRACT 12: the ECR documentation's "all AWS accounts" example refused before any
    write, then accepted with AllowPublicAccess: true; limited to an organization, it is
    accepted as organization:o-…; then deleted."""
    everyone = {
        "Sid": "AllowPull",
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
                   "ecr:BatchCheckLayerAvailability"],
    }
    refused = with_policy(new_id(load_event("repository-create.json")), [everyone], "2008-10-17")
    demo.refused(
        "The ECR documentation's \"allow all AWS accounts to pull\" policy: refused",
        refused,
        "allows public access",
    )
    allowed = new_id(refused)
    allowed["ResourceProperties"]["AllowPublicAccess"] = "true"
    app = repository_arn("app")
    demo.run(
        "The same with AllowPublicAccess: true",
        allowed,
        app,
        ["app"],
        check=lambda o: expect(o.data.get("Access") == "public", 'Data.Access is not "public"'),
    )
    organization = dict(everyone, Condition={"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}})
    limited = with_policy(
        follow_up(allowed, "Update", physical_id=app), [organization], "2008-10-17"
    )
    del limited["ResourceProperties"]["AllowPublicAccess"]
    demo.run(
        "Update it: only the organization o-a1b2c3d4e5 may pull (aws:PrincipalOrgID)",
        limited,
        app,
        ["app"],
        check=lambda o: expect(
            o.data.get("Access") == "organization:o-a1b2c3d4e5",
            'Data.Access is not "organization:o-a1b2c3d4e5"',
        ),
    )
    demo.delete(
        "Delete the stack: the repository policy",
        follow_up(limited, "Delete", physical_id=app),
        "app",
    )


def drift(demo: Demo, cloud: Cloud) -> None:
    """CONTRACT 13: a stack's grant taken out in the console is reported, with who did it,
    and put back, the console's own statement kept."""
    print("\n--- Drift: a grant removed in the console ---")
    grant = new_id(load_event("repository-statement-create.json"))
    demo.run(
        "Stack ecr-policies grants account 444455556666 pull on 'app' (a statement resource)",
        grant,
        statements_id(grant),
        ["app"],
    )
    console = {
        "Sid": "ConsoleAudit", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::777788889999:root"},
        "Action": ["ecr:DescribeImages"],
    }
    cloud.set_policy("app", {"Version": "2012-10-17", "Statement": [console]})
    print("  Someone replaced the policy of 'app' in the console, dropping the grant:")
    print(show.indent(show.pretty_policy(cloud.repository_policy("app")), 4))
    demo.step += 1
    title = "CloudTrail's record of that SetRepositoryPolicy reaches the provider (EventBridge)"
    print(f"\n=== {demo.step}. {title} ===")
    invocation, lines = demo.provider.invoke_event(made_now(load_event("drift/set-repository-policy.json")))
    print(f"  Result: {json.dumps(invocation.result or invocation.error)}")
    drifted = [line for line in lines if line.get("message") == "policy drift"]
    for line in drifted:
        fields = {k: line[k] for k in ("target", "missing", "changed", "by", "restored")}
        print(f"  Log: policy drift {json.dumps(fields)}")
    show.live(cloud, ["app"])
    sids = sorted(s.get("Sid", "") for s in cloud.statements("app"))
    problems = []
    if invocation.result != {"targets": 1, "drifted": 1, "restored": 1}:
        problems.append(f"result {invocation.result or invocation.error}")
    if sids != ["ConsoleAudit", "PullForConsumers"]:
        problems.append(f"live Sids {sids}, expected the grant back and the console's kept")
    if problems:
        demo.failures += [f"step {demo.step} ({title}): {p}" for p in problems]
        print("  UNEXPECTED:\n" + "\n".join(f"    - {p}" for p in problems))
    else:
        print("  -> as expected: reported, with who did it, and put back")
    demo.run(
        "Delete the stack: the grant goes, the console's statement stays",
        follow_up(grant, "Delete", physical_id=statements_id(grant)),
        statements_id(grant),
        ["app"],
        check=lambda o: expect(
            [s.get("Sid") for s in cloud.statements("app")] == ["ConsoleAudit"],
            "the console's statement is not all that is left",
        ),
    )


def main() -> int:
    cloud = Cloud(lifetime=LIFETIME_SECONDS)
    return run_script(lambda: walk_through(cloud), cloud.stop)


def walk_through(cloud: Cloud) -> int:
    """The demo's steps; 0 when all ended as expected, 1 when one did not, 2 when it could
    not start."""
    started = time.monotonic()
    print("Starting moto (ECR, S3 and DynamoDB) and the provider under `cargo lambda watch`...")
    try:
        cloud.start()
        provider = cloud.start_watch(DRIFT_ACTION="Restore")
    except RigError as e:
        print(f"The demo could not start: {e}", file=sys.stderr)
        return 2
    print(f"  moto: {cloud.moto.endpoint}; Lambda invoke endpoint: {provider.runtime.url}")
    print(f"  logs: {cloud.workdir}")
    cloud.create_repository("app")
    cloud.create_repository("app-v2")
    cloud.ecr.set_repository_policy(repositoryName="app", policyText=EXISTING_REPOSITORY_POLICY)
    print("  account 123456789012, us-east-1: repositories 'app' and 'app-v2';")
    print("  'app' already has a policy someone set by hand:")
    print(show.indent(show.pretty_policy(EXISTING_REPOSITORY_POLICY), 4))

    demo = Demo(cloud, provider)
    registry = load_event("registry-create.json")
    demo.run(
        "Create the registry replication policy",
        registry,
        REGISTRY_ID,
        ["registry"],
        check=lambda o: expect(
            cloud.registry_policy() == o.data.get("PolicyText"),
            "the live registry policy is not the one written",
        ),
    )

    adopt = load_event("repository-adopt.json")
    app = repository_arn("app")
    demo.run(
        "Create the repository policy, adopting the hand-made one (Adopt: true)",
        adopt,
        app,
        ["app"],
        check=lambda o: expect(o.data.get("Adopted") == "true", 'Data.Adopted is not "true"'),
    )

    more = load_event("repository-update.json")["ResourceProperties"]
    update = follow_up(adopt, "Update", physical_id=app, properties=dict(more, Adopt="true"))
    demo.run(
        "Update it: add a push statement for the CI role",
        update,
        app,
        ["app"],
        check=lambda o: expect(
            cloud.repository_policy("app") == compact(policy_of(update["ResourceProperties"])),
            "the live policy is not the updated one",
        ),
    )

    app_v2 = repository_arn("app-v2")
    replace = follow_up(
        update,
        "Update",
        physical_id=app,
        properties=dict(update["ResourceProperties"], RepositoryName="app-v2"),
    )
    demo.run(
        "Replace it: the template now names repository 'app-v2'",
        replace,
        app_v2,
        ["app", "app-v2"],
    )

    demo.delete(
        "CloudFormation's cleanup: Delete of the old PhysicalResourceId",
        follow_up(update, "Delete", physical_id=app),
        "app",
        also_show=("app-v2",),
    )
    demo.delete(
        "Delete the stack: the repository policy",
        follow_up(replace, "Delete", physical_id=app_v2),
        "app-v2",
    )
    demo.delete(
        "Delete the stack: the registry policy",
        follow_up(registry, "Delete", physical_id=REGISTRY_ID),
        "registry",
    )

    two_stacks(demo, cloud)

    demo.refused(
        "A template with a typo (RepositoryNmae) and Adopt: yes",
        load_event("bad-input.json"),
        "RepositoryNmae",
    )

    public_access(demo, cloud)
    drift(demo, cloud)

    problems = cloud.unexpected_responses()
    demo.failures += [f"responses: {p}" for p in problems]
    print(
        f"\n{demo.step} steps, {len(demo.failures)} unexpected, "
        f"one response per event: {'yes' if not problems else 'NO'}; "
        f"{time.monotonic() - started:.1f} s"
    )
    for failure in demo.failures:
        print(f"  UNEXPECTED {failure}")
    print(f"Provider log: {provider.log}")
    return 1 if demo.failures else 0


if __name__ == "__main__":
    sys.exit(main())
