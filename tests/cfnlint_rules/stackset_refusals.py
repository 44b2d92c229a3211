"""cfn-lint rules for what service-managed CloudFormation StackSets refuse, or what would
break when one template is deployed to every account and region of an organization
(CONTRACT 14). Loaded with `cfn-lint --append-rules tests/cfnlint_rules` for stackset.yaml and
artifact-buckets.yaml only (scripts/lint-templates); tests/templates/ shows each rule failing
on a template of the shape it refuses, and passing stackset.yaml.

    E9901  a Transform (AWS::Serverless-2016-10-31 or any other)
    E9902  an AWS::Serverless::* resource, or a nested stack (AWS::CloudFormation::Stack)
    E9903  Lambda code inline (ZipFile), or from a bucket whose name does not come from
           ${AWS::Region} (Lambda reads code only from a bucket of its own region)
    E9904  a fixed role, function or table name without the region (IAM names are global to
           an account, so two regions of one account would collide)

cfn-lint translates a SAM template before the rules run: E9901 reads the Transform from what
it saw before, and E9903 then sees the translation's placeholder bucket."""

from __future__ import annotations

from typing import Any, Iterator

from cfnlint.rules import CloudFormationLintRule, RuleMatch

LAMBDA_CODE = {
    "AWS::Lambda::Function": "Code",
    "AWS::Lambda::LayerVersion": "Content",
}
NAME_PROPERTIES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::DynamoDB::Table": "TableName",
}


def mentions_region(value: Any) -> bool:
    """Whether a value is built from the region: a `Ref: AWS::Region`, or a `Fn::Sub` whose
    string names `${AWS::Region}` (or one of its variables does)."""
    if isinstance(value, dict):
        if value.get("Ref") == "AWS::Region":
            return True
        sub = value.get("Fn::Sub")
        if isinstance(sub, str):
            return "${AWS::Region}" in sub
        if isinstance(sub, list) and sub:
            return ("${AWS::Region}" in sub[0] if isinstance(sub[0], str) else False) or any(
                mentions_region(v) for v in sub[1:]
            )
        return any(mentions_region(v) for v in value.values())
    if isinstance(value, list):
        return any(mentions_region(v) for v in value)
    return False


Finding = Iterator[tuple[list[Any], str]]


class _StackSetRule(CloudFormationLintRule):
    """A rule that looks at each resource in turn: ``resource`` yields (path, message) for
    what it refuses there."""

    source_url = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-concepts.html"
    tags = ["stacksets"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, resource in (cfn.template.get("Resources") or {}).items():
            if not (isinstance(resource, dict) and isinstance(resource.get("Type"), str)):
                continue
            properties = resource.get("Properties")
            properties = properties if isinstance(properties, dict) else {}
            for path, message in self.resource(name, resource["Type"], properties):
                matches.append(RuleMatch(["Resources", name, *path], f"{name}: {message}"))
        return matches

    def resource(self, name: str, kind: str, properties: dict[str, Any]) -> Finding:
        return iter(())


class NoTransform(_StackSetRule):
    id = "E9901"
    shortdesc = "No transform in a StackSet template"
    description = "Service-managed StackSets refuse templates with a Transform; translate them first"

    def match(self, cfn: Any) -> list[RuleMatch]:
        transform = cfn.transform_pre.get("Transform") or cfn.template.get("Transform")
        if not transform:
            return []
        return [RuleMatch(["Transform"], f"Transform {transform} is refused by service-managed "
                          "StackSets: generate plain CloudFormation (scripts/stackset)")]


class RefusedType(_StackSetRule):
    id = "E9902"
    shortdesc = "No SAM resources or nested stacks in a StackSet template"
    description = "AWS::Serverless::* needs the SAM transform and AWS::CloudFormation::Stack is a nested stack: StackSets refuse both"

    def resource(self, name: str, kind: str, properties: dict[str, Any]) -> Finding:
        if kind.startswith("AWS::Serverless::"):
            yield ["Type"], f"{kind} needs the SAM transform, which service-managed StackSets refuse"
        elif kind == "AWS::CloudFormation::Stack":
            yield ["Type"], "a nested stack is refused in a service-managed StackSet; put its resources in this template"


class RegionalCode(_StackSetRule):
    id = "E9903"
    shortdesc = "Lambda code from a bucket of the instance's own region"
    description = "Lambda reads code only from a bucket in the function's region: no inline ZipFile, and a bucket name built from ${AWS::Region}"

    def resource(self, name: str, kind: str, properties: dict[str, Any]) -> Finding:
        key = LAMBDA_CODE.get(kind, "")
        code = properties.get(key)
        if not isinstance(code, dict) or "ImageUri" in code:
            return
        if "ZipFile" in code:
            yield ["Properties", key, "ZipFile"], \
                "inline code (ZipFile); take it from the bucket ${ArtifactBucketPrefix}-${AWS::Region}"
        elif not mentions_region(code.get("S3Bucket")):
            yield ["Properties", key, "S3Bucket"], (
                f"code bucket {code.get('S3Bucket')!r} is not derived from ${{AWS::Region}}; Lambda "
                "reads code only in its own region: !Sub ${ArtifactBucketPrefix}-${AWS::Region}")


class RegionalNames(_StackSetRule):
    id = "E9904"
    shortdesc = "Names unique in an account carry the region"
    description = "A fixed role, function or table name must include ${AWS::Region}, or two regions of one account collide"

    def resource(self, name: str, kind: str, properties: dict[str, Any]) -> Finding:
        # A name left to CloudFormation is unique already: only a fixed one is looked at.
        fixed = {k: v for k, v in properties.items() if k == NAME_PROPERTIES.get(kind)}
        for key, value in fixed.items():
            if not mentions_region(value):
                yield ["Properties", key], (
                    f"{key} {value!r} is the same in every region of an account; add "
                    "${AWS::Region} (or leave the name to CloudFormation)")
