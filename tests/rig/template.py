"""What template.yaml says about the function, read from the template itself (never copied):
its logical id, MemorySize, Timeout and environment, the way `sam local invoke` resolves them
(a `!Ref` to a parameter takes the parameter's default); and the DynamoDB tables its
environment names, so that a local run can create them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rig.constants import TEMPLATE


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (`!Ref x` reads as `{"Ref": "x"}`)."""


def _short_tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _short_tag)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


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
        if not isinstance(value, dict):
            settings.variables[name] = str(value)
    return settings
