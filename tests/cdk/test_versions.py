"""One version, one licence and one source URL for the crate, the CDK package and the
Serverless Application Repository listing, so that what users install from npm, PyPI and the
SAR says the same."""

from __future__ import annotations

import json
import re

import stackset
from conftest import CDK, ROOT


def test_the_crate_the_cdk_package_and_the_sar_listing_agree():
    # Cargo.toml's [package] table comes first; tomllib is not in Python 3.10.
    package_table = (ROOT / "Cargo.toml").read_text().split("\n[", 1)[0]
    crate = dict(re.findall(r'^(version|license) = "([^"]*)"$', package_table, re.M))
    package = json.loads((CDK / "package.json").read_text())
    listing = stackset.load(stackset.SOURCE)["Metadata"]["AWS::ServerlessRepo::Application"]
    assert crate["version"] == package["version"] == listing["SemanticVersion"]
    assert crate["license"] == package["license"] == listing["SpdxLicenseId"] == "Apache-2.0"
    assert package["repository"]["url"].removesuffix(".git") == listing["SourceCodeUrl"]
    assert "awscdk" in package["keywords"]
    # sam package uploads these files with the listing.
    for key in ("LicenseUrl", "ReadmeUrl"):
        assert (ROOT / listing[key]).is_file(), listing[key]
