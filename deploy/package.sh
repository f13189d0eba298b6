#!/usr/bin/env bash
# `make package`: build the AWS Lambda artefact offline and check it. Safe to run again.
#   1. npm ci                    the pinned Serverless Framework v3 and plugins (package-lock.json)
#   2. check_package.py sources  requirements.in matches pyproject.toml and requirements.txt (lock.sh)
#                                locks it with hashes; secrets.yml gives every
#                                ${NAME} of the configuration; the configuration is valid
#   3. serverless package        code + configuration + dependencies (pip, no Docker) into
#                                .serverless/stagesync.zip: no AWS credential, no AWS call
#   4. check_package.py artefact contents, wheels fit for Lambda, size limits, a /healthz smoke run
# Environment: STAGESYNC_STAGE (default dev); STAGESYNC_DEPLOY_CONFIG (a file of deploy/; default
# stagesync.toml, else stagesync.example.toml); STAGESYNC_CHECK_PYTHON for the checks (default
# ../.venv/bin/python, else python3);
# STAGESYNC_LAMBDA_PYTHON, the Python 3.11 that pip and the smoke run use (default python3.11).
set -euo pipefail
cd "$(dirname "$0")"
started=$(date +%s)
stage=${STAGESYNC_STAGE:-dev}
python=${STAGESYNC_CHECK_PYTHON:-../.venv/bin/python}
[ -x "$python" ] || python=python3
if [ -z "${STAGESYNC_DEPLOY_CONFIG:-}" ]; then
  if [ -f stagesync.toml ]; then
    STAGESYNC_DEPLOY_CONFIG=stagesync.toml
  else
    STAGESYNC_DEPLOY_CONFIG=stagesync.example.toml
    echo "package: no deploy/stagesync.toml: packaging stagesync.example.toml"
  fi
fi
export STAGESYNC_DEPLOY_CONFIG

npm ci --no-audit --no-fund --loglevel=error
"$python" check_package.py sources --config "$STAGESYNC_DEPLOY_CONFIG"

# Offline: secrets.yml's `none` section (no SSM lookup), and no credentials to find, so that any
# AWS call would fail loudly instead of happening; no telemetry, no update notice.
rm -rf .serverless
env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
  STAGESYNC_SECRETS=none SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off \
  npx --no-install serverless package --stage "$stage"

"$python" check_package.py artefact .serverless/stagesync.zip --config "$STAGESYNC_DEPLOY_CONFIG"
echo "package: deploy/.serverless/stagesync.zip built and checked in $(( $(date +%s) - started )) s"
