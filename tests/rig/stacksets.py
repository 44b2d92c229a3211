"""An organization rollout on moto (CONTRACT 14): an organization with an OU of member
accounts, the artifact buckets of artifact-buckets.yaml, `make package` pointed at moto, and
what one member account holds in one region, read with that account's own credentials (the
way an operator reads it: through OrganizationAccountAccessRole)."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rig.constants import ARTIFACT_BUCKETS, ROOT, TEST_CREDENTIALS
from rig.moto import Moto
from rig.procs import caller_env
from rig.template import load

ORG_ROLE = "OrganizationAccountAccessRole"


@dataclass
class Organization:
    id: str
    root: str
    ou: str
    accounts: list[str]


def organization(moto: Moto, members: int) -> Organization:
    """An organization managed from moto's default account, an OU `platform` and ``members``
    accounts in it."""
    org = moto.client("organizations")
    org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="platform")["OrganizationalUnit"]["Id"]
    accounts = []
    for n in range(members):
        status = org.create_account(Email=f"member{n}@example.com", AccountName=f"member{n}")
        account = status["CreateAccountStatus"]["AccountId"]
        org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
        accounts.append(account)
    return Organization(org_id, root, ou, accounts)


def artifact_buckets(moto: Moto, org: Organization, prefix: str, regions: list[str]) -> None:
    """artifact-buckets.yaml deployed as a stack in each region of the management account."""
    body = ARTIFACT_BUCKETS.read_text()
    for region in regions:
        cloudformation = moto.client("cloudformation", region)
        cloudformation.create_stack(StackName="ecr-policy-provider-artifacts", TemplateBody=body,
                                    Parameters=parameters(BucketPrefix=prefix, OrganizationId=org.id))
        status = cloudformation.describe_stacks(StackName="ecr-policy-provider-artifacts")
        assert status["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE", status


def parameters(**values: str) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


@dataclass
class Packaged:
    parameters: dict[str, str]
    seconds: float
    output: str


def package(moto: Moto, regions: list[str], prefix: str, zip_path: str, arch: str) -> Packaged:
    """`make package` with a prebuilt zip, against moto's S3; the parameters it printed."""
    env = {
        **caller_env(moto.run),
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_ACCESS_KEY_ID": TEST_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": TEST_CREDENTIALS["aws_secret_access_key"],
    }
    argv = ["make", "-s", "package", f"REGIONS={' '.join(regions)}", f"BUCKET_PREFIX={prefix}",
            f"ZIP={zip_path}", f"ARCH={arch}"]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"
    printed = dict(line.split("=", 1) for line in done.stdout.split() if "=" in line)
    return Packaged(printed, seconds, done.stdout + done.stderr)


def member_credentials(moto: Moto, account: str) -> dict[str, str]:
    """Credentials of a member account, through the role Organizations creates in it."""
    sts = moto.client("sts")
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ORG_ROLE}",
                        RoleSessionName="e2e-stacksets")["Credentials"]
    return {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
            "aws_session_token": c["SessionToken"]}


@dataclass
class Deployed:
    """What one account holds in one region, of the kinds the StackSet template makes."""

    account: str
    region: str
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)
    # IAM is global: the roles whose names end in this region.
    roles: dict[str, str] = field(default_factory=dict)
    log_groups: list[str] = field(default_factory=list)
    rules: dict[str, list[str]] = field(default_factory=dict)

    def counts(self) -> Counter[str]:
        return Counter({
            "AWS::Lambda::Function": len(self.functions),
            "AWS::DynamoDB::Table": len(self.tables),
            "AWS::IAM::Role": len(self.roles),
            "AWS::Logs::LogGroup": len(self.log_groups),
            "AWS::Events::Rule": len(self.rules),
        })


def deployed(moto: Moto, account: str, region: str) -> Deployed:
    credentials = member_credentials(moto, account)
    assert moto.client("sts", region, credentials).get_caller_identity()["Account"] == account

    def client(service: str) -> Any:
        return moto.client(service, region, credentials)

    found = Deployed(account, region)
    lam = client("lambda")
    for f in lam.list_functions()["Functions"]:
        found.functions[f["FunctionName"]] = lam.get_function(FunctionName=f["FunctionName"])["Configuration"]
    found.tables = client("dynamodb").list_tables()["TableNames"]
    found.roles = {r["RoleName"]: r["Arn"] for r in client("iam").list_roles()["Roles"]
                   if r["RoleName"].endswith(f"-{region}")}
    found.log_groups = [g["logGroupName"] for g in client("logs").describe_log_groups()["logGroups"]]
    events = client("events")
    for rule in events.list_rules()["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        found.rules[rule["Name"]] = [t["Arn"] for t in targets]
    return found


def template_counts(path: Any) -> Counter[str]:
    """How many resources of each kind `Deployed` reads the template declares."""
    kinds = Deployed("", "").counts()
    resources = load(path).get("Resources", {})
    return Counter({k: sum(1 for r in resources.values() if r.get("Type") == k) for k in kinds})
