"""moto's server, with ECR's repository creation templates, which moto 5.2 lacks.

The stand-in for ECR's four template operations: CreateRepositoryCreationTemplate,
DescribeRepositoryCreationTemplates (paged: ``maxResults`` 1 to 1,000, 100 when not given, and
an opaque ``nextToken``), UpdateRepositoryCreationTemplate and
DeleteRepositoryCreationTemplate. They are added to moto's own ECR (its ECRResponse and each
account's and region's ECRBackend), so they answer on moto's port beside every other ECR call,
through the fault proxy like them, and moto's reset forgets the templates too. Requests and
answers are ECR's JSON: moto serializes each answer with botocore's model of the operation
(botocore/data/ecr/2015-09-21/service-2.json), and the errors are the model's
(TemplateNotFoundException, TemplateAlreadyExistsException, ValidationException,
InvalidParameterException).

What ECR documents and this does: an update changes only the fields it is given (so a
``repositoryPolicy`` alone leaves the description, tags, lifecycle policy, ``appliedFor`` and
``customRoleArn`` as they were); an empty ``repositoryPolicy`` (0 characters is allowed) is no
policy, and Describe then leaves the field out; a prefix is ECR's ``Prefix`` pattern or
``ROOT``. What it does not: no repository is ever created from a template, and a template's
policy is checked for JSON with a ``Statement`` only (ECR checks it as a repository policy).

Run as ``python -m rig.moto_templates <moto_server arguments>`` (rig.moto.Moto does)."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timezone
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ecr.models import ECRBackend
from moto.ecr.responses import ECRResponse
from moto.server import main

# botocore's `Prefix` shape.
PREFIX = re.compile(r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$")
# botocore's `MaxResults` for this operation, and ECR's documented default.
MAX_RESULTS = 1000
DEFAULT_RESULTS = 100
# The fields of a template a request may set (botocore's CreateRepositoryCreationTemplateRequest
# and UpdateRepositoryCreationTemplateRequest, less `prefix`).
FIELDS = (
    "description",
    "encryptionConfiguration",
    "resourceTags",
    "imageTagMutability",
    "imageTagMutabilityExclusionFilters",
    "repositoryPolicy",
    "lifecyclePolicy",
    "appliedFor",
    "customRoleArn",
)
# RepositoryPolicyText: 0 to 10,240 characters.
MAX_POLICY = 10240


class TemplateNotFoundException(ServiceException):
    code = "TemplateNotFoundException"


class TemplateAlreadyExistsException(ServiceException):
    code = "TemplateAlreadyExistsException"


class ValidationException(ServiceException):
    code = "ValidationException"


class InvalidParameterException(ServiceException):
    code = "InvalidParameterException"


def _templates(backend: ECRBackend) -> dict[str, dict[str, Any]]:
    """The backend's templates by prefix (made on first use: moto's reset makes new backends)."""
    if not hasattr(backend, "creation_templates"):
        backend.creation_templates = {}  # type: ignore[attr-defined]
    return backend.creation_templates  # type: ignore[attr-defined]


def _check_prefix(prefix: Any) -> str:
    if not isinstance(prefix, str) or not 1 <= len(prefix) <= 256 or not PREFIX.match(prefix):
        raise ValidationException(
            f"1 validation error detected: Value '{prefix}' at 'prefix' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            f"{PREFIX.pattern}"
        )
    return prefix


def _check_policy(text: Any) -> None:
    """ECR refuses a policy that is not a policy document; an empty one is no policy."""
    if text is None or text == "":
        return
    if not isinstance(text, str) or len(text) > MAX_POLICY:
        raise ValidationException("repositoryPolicy must be at most 10240 characters")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict) or "Statement" not in document:
        raise InvalidParameterException("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'")


def _shown(template: dict[str, Any]) -> dict[str, Any]:
    """A template as ECR answers it: an empty policy is left out."""
    return {k: v for k, v in template.items() if not (k == "repositoryPolicy" and v == "")}


def _given(response: ECRResponse) -> dict[str, Any]:
    """The template fields the request carries (a field it leaves out is not there)."""
    given = {field: response._get_param(field) for field in FIELDS}
    return {field: value for field, value in given.items() if value is not None}


def create_repository_creation_template(self: ECRResponse) -> ActionResult:
    prefix = _check_prefix(self._get_param("prefix"))
    given = _given(self)
    if not given.get("appliedFor"):
        raise ValidationException("appliedFor is required")
    _check_policy(given.get("repositoryPolicy"))
    templates = _templates(self.ecr_backend)
    if prefix in templates:
        raise TemplateAlreadyExistsException(f"Template with prefix '{prefix}' already exists")
    now = datetime.now(timezone.utc)
    template = {
        "prefix": prefix,
        "imageTagMutability": "MUTABLE",
        "encryptionConfiguration": {"encryptionType": "AES256"},
        **given,
        "createdAt": now,
        "updatedAt": now,
    }
    templates[prefix] = template
    return ActionResult({"registryId": self.current_account, "repositoryCreationTemplate": _shown(template)})


def describe_repository_creation_templates(self: ECRResponse) -> ActionResult:
    templates = _templates(self.ecr_backend)
    prefixes = self._get_param("prefixes") or []
    for prefix in prefixes:
        _check_prefix(prefix)
        if prefix not in templates:
            raise TemplateNotFoundException(f"Template with prefix '{prefix}' does not exist")
    chosen = [templates[p] for p in prefixes] if prefixes else [templates[p] for p in sorted(templates)]
    limit = self._get_param("maxResults")
    if limit is None:
        limit = DEFAULT_RESULTS
    if not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
        raise InvalidParameterException(f"maxResults must be between 1 and {MAX_RESULTS}")
    token = self._get_param("nextToken")
    start = 0
    if token is not None:
        if not isinstance(token, str) or not token.startswith("t-") or not token[2:].isdigit():
            raise InvalidParameterException("Invalid parameter at 'nextToken'")
        start = int(token[2:])
    page = chosen[start : start + limit]
    answer: dict[str, Any] = {
        "registryId": self.current_account,
        "repositoryCreationTemplates": [_shown(t) for t in page],
    }
    if start + limit < len(chosen):
        answer["nextToken"] = f"t-{start + limit}"
    return ActionResult(answer)


def update_repository_creation_template(self: ECRResponse) -> ActionResult:
    prefix = _check_prefix(self._get_param("prefix"))
    templates = _templates(self.ecr_backend)
    if prefix not in templates:
        raise TemplateNotFoundException(f"Template with prefix '{prefix}' does not exist")
    given = _given(self)
    _check_policy(given.get("repositoryPolicy"))
    template = templates[prefix]
    template.update(given)
    template["updatedAt"] = datetime.now(timezone.utc)
    return ActionResult({"registryId": self.current_account, "repositoryCreationTemplate": _shown(template)})


def delete_repository_creation_template(self: ECRResponse) -> ActionResult:
    prefix = _check_prefix(self._get_param("prefix"))
    templates = _templates(self.ecr_backend)
    if prefix not in templates:
        raise TemplateNotFoundException(f"Template with prefix '{prefix}' does not exist")
    template = templates.pop(prefix)
    return ActionResult({"registryId": self.current_account, "repositoryCreationTemplate": _shown(template)})


for _operation in (
    create_repository_creation_template,
    describe_repository_creation_templates,
    update_repository_creation_template,
    delete_repository_creation_template,
):
    setattr(ECRResponse, _operation.__name__, _operation)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
