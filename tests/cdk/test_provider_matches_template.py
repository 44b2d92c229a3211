"""`new EcrPolicyProvider` deploys what template.yaml deploys: its function, role, lock table,
drift rules and their permissions, dead-letter queue, log group and alarm, property by property,
with the template's defaults and with every parameter set, so that the two cannot drift apart.

template.yaml is read as `sam deploy` reads it: AWS's SAM translator turns it into plain
CloudFormation (scripts/stackset.py's translate), and its parameters and conditions are resolved
with the values given. The construct's template comes from cdk/test/apps/provider-app.ts. The
only differences allowed are the ones below: where the code comes from (an asset, a build),
SAM's own tag and build metadata, CDK's own metadata, and the logical ids (matched by the
construct ids, which are the template's logical ids)."""

from __future__ import annotations

import copy
import difflib
import json
from typing import Any

import pytest

import stackset
from conftest import CDK, run
from rig.cdk import stringified

# What only SAM or only CDK writes, and the code's location: never compared.
SAM_ONLY_METADATA = ("BuildMethod", "BuildProperties", "SamResourceId")
SAM_TAG = "lambda:createdBy"
CDK_METADATA_PREFIX = "aws:"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("provider")
    run("node", CDK / "test-out" / "apps" / "provider-app.js", out)
    return {
        "Defaults": json.loads((out / "Defaults.template.json").read_text()),
        "Custom": json.loads((out / "Custom.template.json").read_text()),
        "custom": json.loads((out / "custom.json").read_text()),
    }


class Resolver:
    """template.yaml's parameters and conditions resolved with the given values."""

    def __init__(self, template: dict[str, Any], values: dict[str, str]):
        unknown = set(values) - set(template["Parameters"])
        assert not unknown, f"template.yaml has no parameters {unknown}"
        self.values = {n: str(values.get(n, p.get("Default"))) for n, p in template["Parameters"].items()}
        self.conditions = template.get("Conditions", {})

    def condition(self, value: Any) -> bool:
        if isinstance(value, dict) and set(value) == {"Condition"}:
            return self.condition(self.conditions[value["Condition"]])
        (function, args), = value.items()
        if function == "Fn::Not":
            return not self.condition(args[0])
        if function == "Fn::Equals":
            return self(args[0]) == self(args[1])
        if function == "Fn::And":
            return all(self.condition(a) for a in args)
        if function == "Fn::Or":
            return any(self.condition(a) for a in args)
        raise ValueError(f"condition {value}")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Ref"} and value["Ref"] in self.values:
                return self.values[value["Ref"]]
            if set(value) == {"Fn::If"}:
                name, yes, no = value["Fn::If"]
                return self(yes if self.condition(self.conditions[name]) else no)
            out = {}
            for k, v in value.items():
                v = self(v)
                if v != {"Ref": "AWS::NoValue"}:
                    out[k] = v
            return out
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


def sam_resources(values: dict[str, str]) -> dict[str, Any]:
    """template.yaml as `sam deploy` would deploy it with these parameter values."""
    source = stackset.load(stackset.SOURCE)
    translated = stackset.translate(source)
    resolve = Resolver(translated, values)
    resources = {}
    for name, resource in translated["Resources"].items():
        resource = resolve(copy.deepcopy(resource))
        properties = resource.get("Properties", {})
        properties.pop("Code", None) if resource["Type"] == "AWS::Lambda::Function" else None
        tags = [t for t in properties.get("Tags", []) if t.get("Key") != SAM_TAG]
        properties.pop("Tags", None)
        if tags:
            properties["Tags"] = tags
        metadata = {k: v for k, v in resource.get("Metadata", {}).items() if k not in SAM_ONLY_METADATA}
        resource.pop("Metadata", None)
        if metadata:
            resource["Metadata"] = metadata
        resources[name] = stringified(resource)
    return resources


def rename(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in names:
            return {"Ref": names[value["Ref"]]}
        if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][0] in names:
            return {"Fn::GetAtt": [names[value["Fn::GetAtt"][0]], *value["Fn::GetAtt"][1:]]}
        return {k: rename(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [rename(v, names) for v in value]
    return value


def cdk_resources(template: dict[str, Any]) -> dict[str, Any]:
    """The construct's resources, under the template's logical ids (their construct ids)."""
    resources = {k: r for k, r in template["Resources"].items() if r["Type"] != "AWS::CDK::Metadata"}
    names = {k: r["Metadata"]["aws:cdk:path"].split("/")[-1] for k, r in resources.items()}
    assert len(set(names.values())) == len(names), names
    out = {}
    for logical_id, resource in resources.items():
        resource = rename(copy.deepcopy(resource), names)
        if resource["Type"] == "AWS::Lambda::Function":
            resource["Properties"].pop("Code")
        metadata = {k: v for k, v in resource.get("Metadata", {}).items() if not k.startswith(CDK_METADATA_PREFIX)}
        resource.pop("Metadata", None)
        if metadata:
            resource["Metadata"] = metadata
        out[names[logical_id]] = stringified(resource)
    return out


def assert_same(sam: dict[str, Any], cdk: dict[str, Any]) -> None:
    assert sorted(cdk) == sorted(sam), f"resources: template.yaml {sorted(sam)}, construct {sorted(cdk)}"
    for name in sam:
        if sam[name] != cdk[name]:
            diff = difflib.unified_diff(
                json.dumps(sam[name], indent=1, sort_keys=True).splitlines(),
                json.dumps(cdk[name], indent=1, sort_keys=True).splitlines(),
                "template.yaml", "EcrPolicyProvider", lineterm="",
            )
            pytest.fail(f"{name} differs:\n" + "\n".join(diff), pytrace=False)


def test_with_the_template_defaults_the_construct_deploys_what_template_yaml_does(synthesized):
    assert_same(sam_resources({}), cdk_resources(synthesized["Defaults"]))


def test_with_every_parameter_set_the_construct_follows_its_props(synthesized):
    custom = synthesized["custom"]
    template = stackset.load(stackset.SOURCE)
    # Every parameter of the template is set by a prop: a new parameter needs a new prop.
    assert sorted(custom) == sorted(template["Parameters"])
    for name, value in custom.items():
        assert value != str(template["Parameters"][name].get("Default")), f"{name}: the default"
    assert_same(sam_resources(custom), cdk_resources(synthesized["Custom"]))
