"""The provider's code for a StackSet rollout (CONTRACT 14, docs/org-rollout.md): built once,
zipped, named by its SHA-256 and uploaded to the artifact bucket of every region the StackSet
deploys to, `<bucket prefix>-<region>` (artifact-buckets.yaml makes them). Prints the
parameters the StackSet takes: ArtifactBucketPrefix, ArtifactKey and Architecture.

    scripts/package --regions "us-east-1 eu-west-1" --bucket-prefix acme-ecr-policy-provider
        [--zip bootstrap.zip | --binary path/to/bootstrap] [--arch arm64|x86_64]

Without --zip or --binary it builds the release binary with cargo-lambda, for arm64 where the
aarch64-unknown-linux-gnu target is installed and x86_64 otherwise (--arch chooses). A binary
is zipped as `bootstrap` with fixed timestamps and mode, so the same binary always makes the
same zip and the same key; a new build makes a new key, which is what makes CloudFormation
replace the function's code. A key already in a bucket is not uploaded again. Each bucket must
be in its own region (Lambda reads code only there), which is checked before any upload.

Credentials and endpoints are boto3's own (AWS_PROFILE, AWS_ENDPOINT_URL, ...); with
AWS_ENDPOINT_URL set (a local emulator such as moto) buckets are addressed by path."""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import re
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY_NAME = "ecr-policy-provider"
KEY_PREFIX = "ecr-policy-provider"
# Lambda's custom runtimes run the file `bootstrap` at the zip's root.
ENTRY = "bootstrap"
# ELF e_machine values of the two architectures Lambda runs.
ELF_MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}
RUST_TARGETS = {"arm64": "aarch64-unknown-linux-gnu", "x86_64": "x86_64-unknown-linux-gnu"}
CARGO_LAMBDA_FLAGS = {"arm64": "--arm64", "x86_64": "--x86-64"}
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")


class PackageError(RuntimeError):
    """Something the operator has to fix; the message says what."""


def architecture_of(binary: bytes) -> str | None:
    """x86_64 or arm64 from a Linux binary's ELF header; None for anything else."""
    if len(binary) < 20 or binary[:4] != b"\x7fELF":
        return None
    order = "little" if binary[5] == 1 else "big"
    return ELF_MACHINES.get(int.from_bytes(binary[18:20], order))


def deterministic_zip(binary: bytes) -> bytes:
    """The binary as `bootstrap`, executable, with a fixed date: same binary, same bytes."""
    info = zipfile.ZipInfo(ENTRY, date_time=(1980, 1, 1, 0, 0, 0))
    info.create_system = 3  # Unix, so that Lambda keeps the mode
    info.external_attr = (0o100755 & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(info, binary)
    return out.getvalue()


def default_architecture() -> str:
    """arm64 (the template's default) where its Rust target is installed, else x86_64."""
    try:
        installed = subprocess.run(["rustup", "target", "list", "--installed"], cwd=ROOT,
                                   capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        installed = []
    return "arm64" if RUST_TARGETS["arm64"] in installed else "x86_64"


def build(arch: str) -> bytes:
    """The release binary, built once by cargo-lambda (as `sam build` does)."""
    cargo_lambda = ROOT / ".venv" / "bin" / "cargo-lambda"
    argv = [str(cargo_lambda), "lambda", "build", "--release", CARGO_LAMBDA_FLAGS[arch],
            "--bin", BINARY_NAME]
    print(f"building: {' '.join(argv[1:])}", file=sys.stderr)
    if subprocess.run(argv, cwd=ROOT).returncode != 0:
        raise PackageError("the build failed (cargo lambda build, above)")
    return (ROOT / "target" / "lambda" / BINARY_NAME / ENTRY).read_bytes()


def read_zip(path: Path) -> tuple[bytes, str | None]:
    """A prebuilt zip as it is, and the architecture of its `bootstrap` when that is a binary."""
    data = path.read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            entry = z.read(ENTRY) if ENTRY in z.namelist() else b""
    except zipfile.BadZipFile as e:
        raise PackageError(f"{path} is not a zip: {e}") from None
    if not entry:
        raise PackageError(f"{path} has no {ENTRY} at its root, which a custom runtime runs")
    return data, architecture_of(entry)


def s3_client(region: str):
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 5, "mode": "standard"})
    if os.environ.get("AWS_ENDPOINT_URL"):
        config = config.merge(Config(s3={"addressing_style": "path"}))
    return boto3.client("s3", region_name=region, config=config)


def upload(region: str, bucket: str, key: str, body: bytes, digest: bytes) -> str:
    """Puts the zip into one region's bucket unless it is there already; says which."""
    s3 = s3_client(region)
    try:
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    except s3.exceptions.ClientError as e:
        raise PackageError(f"bucket {bucket}: {e} (deploy artifact-buckets.yaml in {region})") from None
    if location != region:
        raise PackageError(f"bucket {bucket} is in {location}, not {region}: Lambda in {region} "
                           "could not read it")
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        if head.get("ContentLength") == len(body):
            return "present"
    except s3.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise PackageError(f"bucket {bucket}: {e}") from None
    # S3 checks the body against its SHA-256 before storing it.
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/zip",
                  ChecksumSHA256=base64.b64encode(digest).decode())
    return "uploaded"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/package", description=__doc__.splitlines()[0])
    parser.add_argument("--regions", required=True,
                        help="the regions the StackSet deploys to, separated by spaces or commas")
    parser.add_argument("--bucket-prefix", required=True,
                        help="the buckets are <prefix>-<region> (artifact-buckets.yaml's BucketPrefix)")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--zip", type=Path, help="a zip built already (bootstrap at its root)")
    given.add_argument("--binary", type=Path, help="a binary built already, zipped here as bootstrap")
    parser.add_argument("--arch", choices=sorted(RUST_TARGETS),
                        help="what to build for (default: arm64 where its target is installed); "
                             "with --zip or --binary, only where the file does not say")
    args = parser.parse_args(argv)

    regions = [r for r in re.split(r"[\s,]+", args.regions) if r]
    bad = [r for r in regions if not REGION.match(r)]
    if not regions or bad:
        raise PackageError(f"--regions needs region names such as us-east-1; got {args.regions!r}")
    regions = sorted(set(regions), key=regions.index)

    if args.zip:
        body, arch = read_zip(args.zip)
    else:
        if args.binary:
            binary = args.binary.read_bytes()
        else:
            binary = build(args.arch or default_architecture())
        body, arch = deterministic_zip(binary), architecture_of(binary)
    if arch and args.arch and arch != args.arch:
        raise PackageError(f"the binary is built for {arch}, not {args.arch}")
    arch = arch or args.arch
    if not arch:
        raise PackageError("the zip's bootstrap is not a Linux binary of x86_64 or arm64: "
                           "say which with --arch")

    digest = hashlib.sha256(body).digest()
    key = f"{KEY_PREFIX}/{digest.hex()}.zip"
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(8, len(regions))) as pool:
        done = list(pool.map(
            lambda r: upload(r, f"{args.bucket_prefix}-{r}", key, body, digest), regions))
    seconds = time.monotonic() - started
    for region, what in zip(regions, done):
        print(f"  {args.bucket_prefix}-{region}: {what}", file=sys.stderr)
    print(f"{key} ({len(body)} bytes, {arch}) in {len(regions)} regions, {seconds:.2f} s",
          file=sys.stderr)
    print("Parameters of the StackSet (stackset.yaml):", file=sys.stderr)
    print(f"ArtifactBucketPrefix={args.bucket_prefix}")
    print(f"ArtifactKey={key}")
    print(f"Architecture={arch}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except PackageError as e:
        print(f"scripts/package: {e}", file=sys.stderr)
        sys.exit(1)
