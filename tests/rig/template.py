"""What template.yaml says about the function, read from the template itself (never copied):
its logical id, MemorySize, Timeout and environment, the way `sam local invoke` resolves them
(a `!Ref` to a parameter takes the parameter's default); and the DynamoDB tables its
environment names, so that a local run can create them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

from rig.constants import ACCOUNT, REGION, TEMPLATE


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as cfn-lint reads it: CloudFormation's short tags as their long form
    (`!Ref x` reads as `{"Ref": "x"}`)."""
    template, problems = decode(str(path))
    if template is None or problems:
        raise ValueError(f"{path} cannot be read: {'; '.join(str(p) for p in problems)}")
    return template


@dataclass
class Table:
    """A DynamoDB table of the template that the function's environment names."""

    logical_id: str
    variable: str
    properties: dict[str, Any]


@dataclass
class FunctionSettings:
    logical_id: str
    memory_mb: int
    timeout_seconds: int
    # The environment as `sam local invoke` would set it from the template, the AWS_LAMBDA_*
    # logging variables included (tables by their logical id).
    variables: dict[str, str] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)


def function_settings(path: Path = TEMPLATE) -> FunctionSettings:
    """The one AWS::Serverless::Function of the template."""
    template = load(path)
    resources = template.get("Resources", {})
    functions = [
        (name, r) for name, r in resources.items() if r.get("Type") == "AWS::Serverless::Function"
    ]
    if len(functions) != 1:
        raise ValueError(f"{path} has {len(functions)} AWS::Serverless::Function, expected 1")
    logical_id, resource = functions[0]
    properties = {
        **(template.get("Globals", {}).get("Function") or {}),
        **(resource.get("Properties") or {}),
    }
    parameters = template.get("Parameters", {})
    settings = FunctionSettings(
        logical_id=logical_id,
        # Lambda's own defaults when the template names none.
        memory_mb=int(properties.get("MemorySize", 128)),
        timeout_seconds=int(properties.get("Timeout", 3)),
    )
    # Lambda (and `sam local invoke`) set these from the template's LoggingConfig.
    logging = properties.get("LoggingConfig") or {}
    if logging.get("LogFormat") == "JSON":
        settings.variables["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        settings.variables["AWS_LAMBDA_LOG_LEVEL"] = str(logging.get("ApplicationLogLevel", "INFO"))
    variables = (properties.get("Environment") or {}).get("Variables") or {}
    for name, value in variables.items():
        if isinstance(value, dict) and set(value) == {"Ref"}:
            ref = value["Ref"]
            if ref in parameters:
                settings.variables[name] = str(parameters[ref].get("Default", ""))
            elif resources.get(ref, {}).get("Type") == "AWS::DynamoDB::Table":
                settings.variables[name] = ref
                settings.tables.append(Table(ref, name, resources[ref].get("Properties") or {}))
            continue
        if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
            # `sam local invoke` resolves any `Fn::GetAtt` to a Lambda function ARN named after
            # the resource (FUNCTION_ROLE_ARN: an ARN no session is ever issued from, so no
            # CloudTrail record is taken for the provider's own).
            resource = value["Fn::GetAtt"][0]
            settings.variables[name] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{resource}"
            continue
        if not isinstance(value, dict):
            settings.variables[name] = str(value)
    return settings
