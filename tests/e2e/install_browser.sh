#!/usr/bin/env bash
# What the browser tests need beyond .venv: Debian's Chromium, driven by the `playwright` Python
# package with executable_path=/usr/bin/chromium (never `playwright install`: no browser download).
# Idempotent; returns at once when Chromium is already installed.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
