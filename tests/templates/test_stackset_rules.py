"""The rules of tests/cfnlint_rules/ (what service-managed StackSets refuse) can fail: each
refuses a small template of the one shape it names and nothing else, they refuse
template.yaml (a Transform, code from a bucket of no region), and they pass stackset.yaml and
artifact-buckets.yaml without a single finding of cfn-lint's."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "tests" / "cfnlint_rules"
OURS = {"E9901", "E9902", "E9903", "E9904"}

# A template the rules accept: every shape they look at, done right.
GOOD: dict[str, Any] = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {
        "ArtifactBucketPrefix": {"Type": "String"},
        "ArtifactKey": {"Type": "String"},
    },
    "Resources": {
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": {"Fn::Sub": "provider-${AWS::Region}"},
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }],
                },
            },
        },
        "Table": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "TableName": {"Fn::Join": ["-", ["lock", {"Ref": "AWS::Region"}]]},
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "target", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "target", "KeyType": "HASH"}],
            },
        },
        "Function": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": {"Fn::Sub": "provider-${AWS::Region}"},
                "Code": {
                    "S3Bucket": {"Fn::Sub": "${ArtifactBucketPrefix}-${AWS::Region}"},
                    "S3Key": {"Ref": "ArtifactKey"},
                },
                "Handler": "bootstrap",
                "Runtime": "provided.al2023",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            },
        },
    },
}


def findings(text: str) -> list[tuple[str, str]]:
    """(rule id, message) of every cfn-lint finding, the project's rules appended."""
    config = ManualArgs(regions=["us-east-1"], append_rules=[str(RULES)])
    return [(m.rule.id, m.message) for m in lint(text, config=config)]


def ours(text: str) -> list[tuple[str, str]]:
    return [(rule, message) for rule, message in findings(text) if rule in OURS]


def changed(change: Callable[[dict[str, Any]], None]) -> str:
    template = copy.deepcopy(GOOD)
    change(template)
    return json.dumps(template)


def _set(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(template: dict[str, Any]) -> None:
        node = template
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _resource(name: str, resource: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return _set(["Resources", name], resource)


FUNCTION = ["Resources", "Function", "Properties"]
# Each refused shape: the change that makes it, the rule that refuses it and what its message
# says.
BAD = {
    "transform": (_set(["Transform"], "AWS::Serverless-2016-10-31"), "E9901", "Transform"),
    "serverless function": (_resource("Sam", {
        "Type": "AWS::Serverless::Function",
        "Properties": {"CodeUri": "s3://b/k.zip", "Handler": "bootstrap", "Runtime": "provided.al2023"},
    }), "E9902", "SAM transform"),
    "nested stack": (_resource("Nested", {
        "Type": "AWS::CloudFormation::Stack",
        "Properties": {"TemplateURL": "https://s3.amazonaws.com/b/nested.yaml"},
    }), "E9902", "nested stack"),
    "inline code": (_set(FUNCTION + ["Code"], {"ZipFile": "print('hi')"}), "E9903", "ZipFile"),
    "fixed code bucket": (_set(FUNCTION + ["Code", "S3Bucket"], "artifacts"), "E9903", "'artifacts'"),
    "code bucket from a parameter": (
        _set(FUNCTION + ["Code", "S3Bucket"], {"Ref": "ArtifactBucketPrefix"}), "E9903", "code bucket"),
    "code bucket of another variable": (
        _set(FUNCTION + ["Code", "S3Bucket"], {"Fn::Sub": "${ArtifactBucketPrefix}-us-east-1"}),
        "E9903", "code bucket"),
    "fixed role name": (
        _set(["Resources", "Role", "Properties", "RoleName"], "provider"), "E9904", "RoleName"),
    "role name from a parameter": (
        _set(["Resources", "Role", "Properties", "RoleName"], {"Fn::Sub": "${ArtifactKey}"}),
        "E9904", "RoleName"),
    "fixed function name": (_set(FUNCTION + ["FunctionName"], "provider"), "E9904", "FunctionName"),
    "fixed table name": (
        _set(["Resources", "Table", "Properties", "TableName"], "lock"), "E9904", "TableName"),
}


def test_the_good_template_passes() -> None:
    assert findings(json.dumps(GOOD)) == []


@pytest.mark.parametrize("shape", list(BAD))
def test_each_refused_shape_fails_with_its_own_rule(shape: str) -> None:
    change, rule, says = BAD[shape]
    found = ours(changed(change))
    assert [r for r, _ in found] == [rule], found
    assert says in found[0][1]


def test_template_yaml_is_refused() -> None:
    # cfn-lint translates it first: the Transform is seen before, the placeholder bucket after.
    found = ours((ROOT / "template.yaml").read_text())
    assert sorted(r for r, _ in found) == ["E9901", "E9903"], found


@pytest.mark.parametrize("name", ["stackset.yaml", "artifact-buckets.yaml"])
def test_the_stackset_templates_pass(name: str) -> None:
    assert findings((ROOT / name).read_text()) == []
