"""moto's server on loopback, standing in for ECR, DynamoDB and the S3 bucket that
CloudFormation's presigned ResponseURLs point at; and reading what is stored there."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from rig.constants import (
    BUCKET,
    MOTO_SERVER,
    ROOT,
    VENV_PYTHON,
    PRESIGN_ACCESS_KEY_ID,
    PRESIGN_SECRET_ACCESS_KEY,
    REGION,
    TEST_CREDENTIALS,
)
from rig.procs import HTTP, RigError, Run, Service, caller_env, free_port

MOTO_START_SECONDS = 30


def missing() -> list[str]:
    if os.access(MOTO_SERVER, os.X_OK):
        return []
    return [f"{MOTO_SERVER} is missing: run scripts/bootstrap"]


def client(
    service: str,
    endpoint: str,
    credentials: dict[str, str] = TEST_CREDENTIALS,
    signature_version: str | None = None,
    region: str = REGION,
):
    """A boto3 client for one of moto's services (S3 signs with SigV4 unless told)."""
    import boto3
    from botocore.config import Config

    if service == "s3" and signature_version is None:
        signature_version = "s3v4"
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        config=Config(
            signature_version=signature_version,
            s3={"addressing_style": "path"},
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 2, "mode": "standard"},
        ),
        **credentials,
    )


class Moto:
    """moto's server: one port serves every AWS service it emulates, with ECR's repository
    creation templates added (rig.moto_templates, the stand-in for what moto lacks). With
    ``stacksets``, a StackSet update also updates every instance's stack, as CloudFormation
    does and moto alone does not (rig.moto_stacksets)."""

    def __init__(self, run: Run, stacksets: bool = False):
        self.run = run
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.endpoint = f"http://{self.address}"
        module = "rig.moto_stacksets" if stacksets else "rig.moto_templates"
        server = [str(VENV_PYTHON), "-m", module]
        env = caller_env(run)
        env["PYTHONPATH"] = str(ROOT / "tests")
        self.service = Service(
            "moto_server",
            [*server, "-H", "127.0.0.1", "-p", str(self.port)],
            env,
            run.workdir / "moto.log",
            run.lifetime,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + MOTO_START_SECONDS
        while time.monotonic() < deadline:
            if not self.service.running():
                raise RigError(
                    f"moto_server exited with {self.service.proc.returncode}:\n"
                    + self.service.log.tail()
                )
            try:
                with HTTP.open(f"{self.endpoint}/moto-api/data.json", timeout=2) as r:
                    r.read()
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RigError(
            f"moto_server did not answer within {MOTO_START_SECONDS} s:\n" + self.service.log.tail()
        )

    def reset(self) -> None:
        """Forgets every resource of every service."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with HTTP.open(request, timeout=10) as r:
            r.read()

    def client(self, service: str, region: str = REGION, credentials: dict[str, str] = TEST_CREDENTIALS):
        return client(service, self.endpoint, credentials, region=region)

    def stop(self) -> None:
        self.service.stop()


@dataclass
class Stored:
    """What reached the bucket under one key: every PUT is a version; a delete marker is
    never written by the provider (it only PUTs), so any is a fault of its own."""

    puts: int = 0
    deletes: int = 0


class Bucket:
    """The versioned bucket CloudFormation's ResponseURLs point at: versioning keeps every
    PUT, so a second response to one URL cannot hide."""

    def __init__(self, moto: Moto, name: str = BUCKET):
        self.moto = moto
        self.name = name
        self.s3 = moto.client("s3")
        presigning = {
            "aws_access_key_id": PRESIGN_ACCESS_KEY_ID,
            "aws_secret_access_key": PRESIGN_SECRET_ACCESS_KEY,
        }
        self.presigner = client("s3", moto.endpoint, presigning)
        # Query-string authentication in Signature Version 2 form, as botocore signs it (moto
        # does not check the signature).
        self.presigner_v2 = client("s3", moto.endpoint, presigning, signature_version="s3")

    def create(self) -> None:
        self.s3.create_bucket(Bucket=self.name)
        self.s3.put_bucket_versioning(
            Bucket=self.name, VersioningConfiguration={"Status": "Enabled"}
        )

    def presigned_put(self, key: str, host: str | None = None, sigv2: bool = False) -> str:
        """A presigned PUT URL for ``key``: SigV4, as CloudFormation's are today, or with
        ``sigv2`` the older ``AWSAccessKeyId``/``Expires``/``Signature`` form some regions
        still send. ``host`` replaces moto's own (a proxy, or a host to be refused)."""
        presigner = self.presigner_v2 if sigv2 else self.presigner
        url = presigner.generate_presigned_url(
            "put_object", Params={"Bucket": self.name, "Key": key}, ExpiresIn=3600
        )
        if host:
            url = url.replace(self.moto.address, host, 1)
        return url

    def read(self, key: str) -> tuple[dict[str, Any] | None, int | None]:
        """The response stored under ``key`` (its latest version) and its size in bytes;
        (None, None) when there is none."""
        try:
            obj = self.s3.get_object(Bucket=self.name, Key=key)
        except self.s3.exceptions.NoSuchKey:
            return None, None
        body = obj["Body"].read()
        return json.loads(body), len(body)

    def stored(self) -> dict[str, Stored]:
        """What reached the bucket, per key."""
        counts: dict[str, Stored] = {}
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=self.name):
            for version in page.get("Versions", []):
                counts.setdefault(version["Key"], Stored()).puts += 1
            for marker in page.get("DeleteMarkers", []):
                counts.setdefault(marker["Key"], Stored()).deletes += 1
        return counts


# What moto's CreateTable takes of a template's AWS::DynamoDB::Table properties (the rest,
# encryption and point-in-time recovery, change nothing a test can see).
_TABLE_KEYS = (
    "KeySchema",
    "AttributeDefinitions",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "ProvisionedThroughput",
)


def create_table(dynamodb: Any, name: str, properties: dict[str, Any]) -> None:
    """A DynamoDB table named ``name``, as a template's ``AWS::DynamoDB::Table`` properties
    declare it: its keys, billing mode and TTL attribute."""
    spec = {k: properties[k] for k in _TABLE_KEYS if k in properties}
    dynamodb.create_table(
        TableName=name, BillingMode=properties.get("BillingMode", "PAY_PER_REQUEST"), **spec
    )
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)


def registry_policy(ecr: Any) -> str | None:
    """The registry's live policy text, read through a boto3 ECR client; None when there is none."""
    try:
        return ecr.get_registry_policy()["policyText"]
    except ecr.exceptions.RegistryPolicyNotFoundException:
        return None


def repository_policy(ecr: Any, name: str) -> str | None:
    """A repository's live policy text; None when there is none."""
    try:
        return ecr.get_repository_policy(repositoryName=name)["policyText"]
    except ecr.exceptions.RepositoryPolicyNotFoundException:
        return None


def template_policy(ecr: Any, prefix: str) -> str | None:
    """A repository creation template's live ``repositoryPolicy``; None when it has none (or
    an empty one)."""
    (template,) = ecr.describe_repository_creation_templates(prefixes=[prefix])[
        "repositoryCreationTemplates"
    ]
    return template.get("repositoryPolicy") or None
