"""The rig's fixed values, in one place: where things are, the account the sample events name,
the credentials every part uses, and the policies "someone else" set before a stack existed.
Values that belong to the provider (its budget, limits, log fields) are in interface.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rig.interface import physical_id
from rig.policies import compact

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
MOTO_SERVER = VENV_BIN / "moto_server"
VENV_PYTHON = VENV_BIN / "python"
CARGO_LAMBDA = VENV_BIN / "cargo-lambda"
BINARY = ROOT / "target" / "debug" / "ecr-policy-provider"
EVENTS = ROOT / "events"
TEMPLATE = ROOT / "template.yaml"
STACKSET = ROOT / "stackset.yaml"
ARTIFACT_BUCKETS = ROOT / "artifact-buckets.yaml"

FUNCTION = "ecr-policy-provider"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account, and the one the sample events name
PARTITION = "aws"
FUNCTION_ARN = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
# Named like the buckets CloudFormation's own ResponseURLs point at.
BUCKET = "cloudformation-custom-resource-response-useast1"
LOG_GROUP = "/aws/lambda/ecr-policy-provider"
LOG_STREAM = "2026/11/23/[$LATEST]e2e"
# How every FAILED Reason ends, given LOG_GROUP and LOG_STREAM in the environment.
REASON_LOG_TAIL = f" (logs: CloudWatch log group {LOG_GROUP}, stream {LOG_STREAM})"
REGISTRY_ID = physical_id("registry", region=REGION, account=ACCOUNT)

# Lines of a log shown when something fails.
LOG_TAIL_LINES = 60
# The tests' bound on the IAM-propagation retry (the template's default is 120 s).
IAM_PROPAGATION_TIMEOUT_SECONDS = 2

# The tests' own boto3 clients talk to moto with these.
TEST_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# Distinctive fake credentials: the provider's own (its environment) and the ones the
# ResponseURLs are presigned with. None of them may ever appear in the provider's output.
PROVIDER_ACCESS_KEY_ID = "AKIAE2EFAULTPROVIDR7"
PROVIDER_SECRET_ACCESS_KEY = "e2eFakeSecret/Qz8vLw3Nr5Tk9Yp2Hs6Dm4Xc1Bj7Gf0"
PROVIDER_SESSION_TOKEN = (
    "IQoJb3JpZ2luX2VjE2eFakeSessionToken//wEaCXVzLWVhc3QtMSJHMEUCIQ" + "Zk4Wq9Tn2Lr7Vb5Mx3"
)
PRESIGN_ACCESS_KEY_ID = "AKIAE2EPRESIGNERKEY3"
PRESIGN_SECRET_ACCESS_KEY = "e2ePresignSecret/Hn4Jw8Rq2Vt6Yx0Bz3Cm7Fk5Lp9"


# Someone else's policies, there before the stack (the ones to adopt, or to leave alone).
EXISTING_REGISTRY_POLICY = compact(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Legacy",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
                "Action": ["ecr:ReplicateImage"],
                "Resource": [f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/*"],
            }
        ],
    }
)
EXISTING_REPOSITORY_POLICY = compact(
    {
        "Version": "2008-10-17",
        "Statement": [
            {"Sid": "Legacy", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}
        ],
    }
)


# Statements others put in a shared policy before any stack (CONTRACT 9): one added in the
# console to the registry policy, one to a repository policy, and the grant Lambda adds to
# every repository its functions pull images from.
CONSOLE_REGISTRY_STATEMENT: dict[str, Any] = {
    "Sid": "ConsoleReplication",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
    "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
    "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/console/*",
}
CONSOLE_REPOSITORY_STATEMENT: dict[str, Any] = {
    "Sid": "ConsolePull",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
}
LAMBDA_GRANT: dict[str, Any] = {
    "Sid": "LambdaECRImageRetrievalPolicy",
    "Effect": "Allow",
    "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    "Condition": {
        "StringLike": {"aws:sourceArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:*"}
    },
}



def others_policy(target: str) -> dict[str, Any]:
    """The policy others made of ``target`` ("registry", or a repository's name) before any
    stack: the console's statement and, on a repository, Lambda's grant. The console writes
    repository policies with Version 2008-10-17; moto takes a registry policy only with
    2012-10-17."""
    if target == "registry":
        return {"Version": "2012-10-17", "Statement": [CONSOLE_REGISTRY_STATEMENT]}
    return {"Version": "2008-10-17", "Statement": [CONSOLE_REPOSITORY_STATEMENT, LAMBDA_GRANT]}


def repository_arn(name: str, region: str = REGION) -> str:
    """A repository's ARN, which is also its policy's PhysicalResourceId."""
    return physical_id("repository", partition=PARTITION, region=region, account=ACCOUNT, name=name)


def failed_create_id(event: dict[str, Any]) -> str:
    """The PhysicalResourceId the provider answers a failed Create with."""
    return physical_id("failed_create", request_id=event["RequestId"])
