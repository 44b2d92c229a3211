"""The provider function inside the CDK package (cdk/assets/): one zip per architecture, and
cdk/assets/manifest.json naming them, which `new EcrPolicyProvider` reads at synth time.

    scripts/cdk-function --release [--arch arm64|x86_64]...   the release build (publishing)
    scripts/cdk-function --binary path/to/bootstrap                  a binary built already
    scripts/cdk-function --placeholder                               tests only: a stand-in

--release builds the binary with cargo-lambda exactly as `make package` does (scripts/package.py,
release profile: lto, one codegen unit, stripped) and zips it deterministically as `bootstrap`,
so the same build always gives the same zip, hence the same asset hash and no needless function
update. --placeholder writes, for both architectures, a `bootstrap` that only says it is not the
provider, and marks it so in the manifest: the construct then warns at synth time, and
`scripts/cdk package --release` refuses to pack it."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import package  # noqa: E402  (scripts/package.py: the build and the zip, in one place)

ASSETS = package.ROOT / "cdk" / "assets"
MANIFEST = ASSETS / "manifest.json"
ARCHITECTURES = ("arm64", "x86_64")
PLACEHOLDER = b"#!/bin/sh\necho 'a test stand-in for ecr-policy-provider, not the provider' >&2\nexit 1\n"


def write(zips: dict[str, bytes], release: bool) -> None:
    """The zips and their manifest, replacing whatever cdk/assets held."""
    ASSETS.mkdir(parents=True, exist_ok=True)
    for old in ASSETS.glob("*.zip"):
        old.unlink()
    manifest = {}
    for arch, body in zips.items():
        name = f"{arch}.zip"
        (ASSETS / name).write_bytes(body)
        manifest[arch] = {"file": name, "sha256": hashlib.sha256(body).hexdigest(), "release": release}
        print(f"cdk/assets/{name}: {len(body)} bytes ({'release' if release else 'test stand-in'})", file=sys.stderr)
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/cdk-function", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--release", action="store_true", help="build the release binary with cargo-lambda")
    mode.add_argument("--binary", type=Path, help="a Linux binary of the provider built already")
    mode.add_argument("--placeholder", action="store_true", help="tests only: a stand-in for each architecture")
    parser.add_argument("--arch", action="append", choices=ARCHITECTURES,
                        help="with --release: what to build (repeatable; default both, which the published "
                             "package carries: arm64 needs `rustup target add aarch64-unknown-linux-gnu`)")
    args = parser.parse_args(argv)
    try:
        if args.placeholder:
            write({arch: package.deterministic_zip(PLACEHOLDER) for arch in ARCHITECTURES}, release=False)
        elif args.binary:
            binary = args.binary.read_bytes()
            arch = package.architecture_of(binary)
            if arch is None:
                raise package.PackageError(f"{args.binary} is not a Linux binary of x86_64 or arm64")
            write({arch: package.deterministic_zip(binary)}, release=True)
        else:
            # Every architecture built before anything is replaced.
            zips = {arch: package.deterministic_zip(package.build(arch)) for arch in args.arch or ARCHITECTURES}
            write(zips, release=True)
    except package.PackageError as e:
        print(f"scripts/cdk-function: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
