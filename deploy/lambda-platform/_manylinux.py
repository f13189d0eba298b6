"""Which manylinux wheels pip may install for AWS Lambda's python3.11 runtime (PEP 600).

pip asks `_manylinux.manylinux_compatible(major, minor, arch)` whether a `manylinux_<major>_<minor>`
wheel runs here. The build machine's glibc is usually newer than Lambda's: without this answer pip
would pick wheels built for it (say manylinux_2_34) that fail to import on Lambda. The python3.11
runtime is Amazon Linux 2, glibc 2.26 (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html);
pure-Python packages and source distributions are not concerned.
"""

LAMBDA_ARCH = "x86_64"  # provider.architecture in serverless.yml
LAMBDA_GLIBC = (2, 26)


def manylinux_compatible(major: int, minor: int, arch: str) -> bool:
    return arch == LAMBDA_ARCH and (major, minor) <= LAMBDA_GLIBC
