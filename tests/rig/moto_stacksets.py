"""moto's server, with the one part of a StackSet update that moto 5.2 leaves out.

moto deploys a service-managed StackSet's instances into the member accounts of an OU for
real (their resources exist in those accounts' backends), but an UpdateStackSet only records
the new template and parameters: no instance's stack is updated, so a new ArtifactKey would
never reach a function. CloudFormation updates every instance's stack; so does this, through
moto's own stack update (which updates each resource, the Lambda function's code included,
read from the bucket the template names). Nothing else is changed: moto still has no
auto-deployment (an account that leaves the OU keeps its instances) and reports every
instance CURRENT.

Run as `python -m rig.moto_stacksets <moto_server arguments>` (rig.moto.Moto does, with
``stacksets=True``)."""

from __future__ import annotations

import sys
from typing import Any

from moto.cloudformation.models import StackSet
from moto.server import main

import rig.moto_templates  # noqa: F401  (ECR's repository creation templates, as always)

_record_update = StackSet.update


def _overrides(instance: Any) -> dict[str, str]:
    """An instance's own ParameterOverrides. moto keeps those as CloudFormation's list of
    key/value pairs; where it stored the stack set's parameters instead (a dict), there are
    none."""
    if not isinstance(instance.parameters, list):
        return {}
    return {p["ParameterKey"]: p["ParameterValue"] for p in instance.parameters if "ParameterValue" in p}


def _update_and_deploy(self: StackSet, *args: Any, **kwargs: Any) -> dict[str, Any]:
    operation = _record_update(self, *args, **kwargs)
    self.instances.template = self.template
    for instance in self.instances.stack_instances:
        instance.template = self.template
        instance.stack.update(self.template, parameters={**self.parameters, **_overrides(instance)})
    return operation


StackSet.update = _update_and_deploy  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
