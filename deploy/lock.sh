#!/usr/bin/env bash
# Regenerate requirements.txt, the Lambda bundle's lock file, from requirements.in: every package
# pinned with the sha256 of each of its files (pip-tools' `pip-compile --generate-hashes`,
# https://pip-tools.readthedocs.io/en/latest/#using-hashes). package.sh then installs exactly these
# files or fails (`pip install --require-hashes --no-deps`, https://pip.pypa.io/en/stable/topics/secure-installs/).
# The resolution runs under lambda-python, so that a package is pinned at a release that has a wheel
# for Lambda's python3.11 (glibc 2.26). Run it after changing requirements.in or to take updates;
# needs PyPI; it leaves nothing installed (pip-tools lives in a throwaway virtualenv).
set -euo pipefail
cd "$(dirname "$0")"
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"${STAGESYNC_LAMBDA_PYTHON:-python3.11}" -m venv "$tools"
"$tools/bin/pip" install --quiet --disable-pip-version-check 'pip-tools>=7.4,<8'
here=$(pwd)
PYTHONPATH="$here/lambda-platform" "$tools/bin/pip-compile" --quiet --generate-hashes --allow-unsafe \
  --strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host --resolver=backtracking \
  --output-file requirements.txt requirements.in
echo "lock: requirements.txt written from requirements.in"
