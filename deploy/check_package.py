"""The checks of package.sh, before and after `serverless package`.

    python check_package.py sources  --config stagesync.toml
    python check_package.py artefact .serverless/stagesync.zip --config stagesync.toml

`sources`: requirements.in lists pyproject.toml's runtime dependencies (less gunicorn, plus the
`lambda` extra; one it lists beyond them is a warning); requirements.txt, the lock that lock.sh
compiles from it, pins each of them with hashes, at a version its floor allows; secrets.yml gives every `${NAME}` of the configuration; the configuration is
valid and names a PostgreSQL database.
`artefact`: the zip holds the code, the configuration and the dependencies and nothing of
node_modules, tests or deploy/ itself; its wheels load on Lambda's python3.11 (x86_64, glibc 2.26);
it fits Lambda's size limits; and, unpacked alone, it imports and answers GET /healthz through
the HTTP handler. Prints the artefact's size. Exit 1 with every problem listed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Lambda quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
# 50 MB zipped for a direct upload, 250 MB unzipped including layers.
MAX_ZIPPED = 50 * 1024 * 1024
MAX_UNZIPPED = 250 * 1024 * 1024
LAMBDA_PYTHON_TAG = "cp311"  # provider.runtime python3.11
LAMBDA_GLIBC = (2, 26)  # python3.11 runs on Amazon Linux 2 (lambda-platform/_manylinux.py)

NOT_FOR_LAMBDA = {"gunicorn", "gevent"}  # API Gateway serves HTTP; see requirements.in
DEFAULT_LAMBDA_EXTRA = ["serverless-wsgi"]  # until pyproject.toml has the `lambda` extra
REQUIRED_ENTRIES = (
    "connector/web/lambda_handlers.py", "connector/web/app.py", "connector/storage/migrations/env.py",
    "adapters/__init__.py", "adapters/platforms/__init__.py",
    "serverless_wsgi.py", "flask/__init__.py", "werkzeug/__init__.py", "sqlalchemy/__init__.py",
    "alembic/__init__.py", "psycopg/__init__.py", "psycopg_binary/__init__.py", "requests/__init__.py",
    "tenacity/__init__.py", "phonenumbers/__init__.py", "shopify/__init__.py", "numpy/__init__.py",
    "connector/domain/predictions/__init__.py",
)
FORBIDDEN = re.compile(r"^(node_modules|tests|\.venv|\.serverless|deploy|lambda-platform)/"
                       r"|^(serverless\.yml|secrets\.yml|package(-lock)?\.json|lambda-python|package\.sh)$"
                       r"|^(connector|adapters)/.*(__pycache__/|\.py[co]$)")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # as connector.config reads them
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
PLACEHOLDER_DATABASE = "postgresql+psycopg://placeholder@localhost/stagesync"


def _name(requirement: str) -> str:
    match = _REQUIREMENT_NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


# --- sources -----------------------------------------------------------------------------------

def requirement_problems(pyproject: Path, requirements: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    extra = project.get("optional-dependencies", {}).get("lambda", DEFAULT_LAMBDA_EXTRA)
    wanted = {_name(r) for r in project.get("dependencies", []) + list(extra)} - NOT_FOR_LAMBDA
    lines = [line.split("#", 1)[0].strip() for line in requirements.read_text(encoding="utf-8").splitlines()]
    listed = {_name(line) for line in lines if line and not line.startswith("-")}  # not pip's options
    for name in sorted(listed - wanted):  # harmless in the artefact, but pyproject.toml should say so
        print(f"package: warning: requirements.in lists {name}, which pyproject.toml's runtime dependencies "
              f"do not", file=sys.stderr)
    return [f"requirements.in: add {n} (a runtime dependency in pyproject.toml)" for n in sorted(wanted - listed)]


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def lock_problems(requirements_in: Path, lock: Path) -> list[str]:
    """The lock pins every requirement of requirements.in, each pin has its hashes (pip's hash-checking
    mode refuses the whole install otherwise), and each pinned version meets the floor asked for."""
    if not lock.is_file():
        return ["requirements.txt: missing: run deploy/lock.sh"]
    text = lock.read_text(encoding="utf-8").replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        if match := _PIN.match(line.strip()):
            pins[_name(match.group(1))] = (match.group(2), "--hash=sha256:" in line)
    problems = [f"requirements.txt: {name} has no --hash: run deploy/lock.sh" for name, (_, hashed) in
                sorted(pins.items()) if not hashed]
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip vendors it, but a bare python3 may not have it: names only then
        Requirement = None
    for line in requirements_in.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name = _name(line)
        if name not in pins:
            problems.append(f"requirements.txt: {name} of requirements.in is not pinned: run deploy/lock.sh")
        elif Requirement is not None and not Requirement(line).specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"requirements.txt: {name}=={pins[name][0]} does not meet requirements.in's {line!r}: "
                            f"run deploy/lock.sh")
    return problems


def secret_names(secrets: Path, section: str = "ssm") -> set[str]:
    """The variable names of one top-level section of secrets.yml (a flat map, two-space indent)."""
    names: set[str] = set()
    inside = False
    for line in secrets.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\S", line) and not line.startswith("#"):
            inside = line.split(":", 1)[0].strip() == section
        elif inside and (match := re.match(r"^\s+([A-Za-z_][A-Za-z0-9_]*)\s*:", line)):
            names.add(match.group(1))
    return names


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [s for item in value for s in _strings(item)] if isinstance(value, list) else []


def config_problems(config_file: Path, secrets: Path) -> list[str]:
    if HERE not in config_file.resolve().parents:
        return [f"{config_file}: the packaged configuration must be a file of deploy/ (the framework packages "
                f"nothing outside it)"]
    if not config_file.is_file():
        return [f"{config_file.name}: no such file in deploy/ (copy stagesync.example.toml, or set "
                f"STAGESYNC_DEPLOY_CONFIG to a file of deploy/)"]
    text = config_file.read_text(encoding="utf-8")
    given = secret_names(secrets)
    try:
        used = set(_ENV_REF.findall(" ".join(_strings(tomllib.loads(text)))))
    except tomllib.TOMLDecodeError as exc:
        return [f"{config_file.name}: not valid TOML: {exc}"]
    problems = [f"secrets.yml: add {name} under `ssm:` (used by {config_file.name})" for name in sorted(used - given)]
    sys.path.insert(0, str(ROOT))
    from connector.config import parse
    from connector.errors import ConfigError

    env = {name: PLACEHOLDER_DATABASE if name == "STAGESYNC_DATABASE_URL" else f"placeholder-{name.lower()}"
           for name in given}
    try:
        settings = parse(text, env=env, source=config_file.name)
    except ConfigError as exc:
        return problems + [p for p in exc.problems if "environment variable" not in p]
    if not settings.database_url.startswith("postgresql"):
        problems.append("the database must be PostgreSQL on Lambda: add STAGESYNC_DATABASE_URL to secrets.yml")
    if not settings.shops:
        problems.append(f"{config_file.name}: no [[shops]]")
    return problems


# --- artefact ----------------------------------------------------------------------------------

def _loads_on_lambda(tag: str) -> bool:
    python, abi, platform = tag.split("-")
    if platform == "any":
        return True
    glibc = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", platform)
    legacy = {"manylinux1_x86_64": (2, 5), "manylinux2010_x86_64": (2, 12), "manylinux2014_x86_64": (2, 17)}
    needs = (int(glibc.group(1)), int(glibc.group(2))) if glibc else legacy.get(platform)
    return needs is not None and needs <= LAMBDA_GLIBC and abi in ("none", "abi3", LAMBDA_PYTHON_TAG)


def _wheel_tag_problems(archive: zipfile.ZipFile) -> list[str]:
    """A wheel loads when one of its tags does (a wheel may say manylinux_2_17 and manylinux_2_28)."""
    problems = []
    for name in archive.namelist():
        if re.fullmatch(r"[^/]+\.dist-info/WHEEL", name):
            tags = [line.split(":", 1)[1].strip() for line in archive.read(name).decode().splitlines()
                    if line.startswith("Tag:")]
            if tags and not any(_loads_on_lambda(tag) for tag in tags):
                problems.append(f"{name.split('/')[0]}: wheel {', '.join(tags)} does not load on Lambda's "
                                f"python3.11 (x86_64, glibc {LAMBDA_GLIBC[0]}.{LAMBDA_GLIBC[1]})")
    return problems


def artefact_problems(zip_path: Path, config_name: str) -> tuple[list[str], str]:
    archive = zipfile.ZipFile(zip_path)
    infos = archive.infolist()
    names = {i.filename for i in infos}
    problems = [f"missing {entry}" for entry in REQUIRED_ENTRIES + (config_name,) if entry not in names]
    problems += [f"must not be packaged: {n}" for n in sorted(names) if FORBIDDEN.search(n)][:20]
    problems += _wheel_tag_problems(archive)
    zipped = zip_path.stat().st_size
    unzipped = sum(i.file_size for i in infos)
    if zipped > MAX_ZIPPED:
        problems.append(f"{zipped / 1e6:.1f} MB zipped: over Lambda's {MAX_ZIPPED / 2**20:.0f} MiB direct upload")
    if unzipped > MAX_UNZIPPED:
        problems.append(f"{unzipped / 1e6:.1f} MB unzipped: over Lambda's {MAX_UNZIPPED / 2**20:.0f} MiB")
    size = (f"{zip_path.name}: {zipped / 1e6:.1f} MB zipped (Lambda: {MAX_ZIPPED / 2**20:.0f} MiB), "
            f"{unzipped / 1e6:.1f} MB unzipped (Lambda: {MAX_UNZIPPED / 2**20:.0f} MiB), {len(infos):,} files")
    return problems, size


SMOKE = """
import json, sys
task = sys.argv[1]
sys.path.insert(0, task)
import connector.web.lambda_handlers as handlers
event = {"version": "2.0", "routeKey": "$default", "rawPath": "/healthz", "rawQueryString": "",
         "headers": {"host": "example.execute-api.eu-west-3.amazonaws.com"}, "isBase64Encoded": False,
         "requestContext": {"http": {"method": "GET", "path": "/healthz", "sourceIp": "127.0.0.1"},
                            "stage": "$default"}}
answer = handlers.http_handler(event, None)
import flask, psycopg, sqlalchemy, numpy
from connector.domain import predictions  # numpy's compiled part loads on this Python
predictions.expected_order_value(predictions.GammaGammaParams(6.25, 3.74, 15.44), numpy.ones(2), numpy.ones(2))
outside = [m.__name__ for m in (handlers, flask, psycopg, sqlalchemy, numpy) if not m.__file__.startswith(task)]
print(json.dumps({"status": answer["statusCode"], "body": answer.get("body"), "psycopg": psycopg.pq.__impl__,
                  "outside": outside}))
"""


def smoke_problems(zip_path: Path, config_name: str, secrets: Path) -> list[str]:
    """Unpack the artefact alone and answer GET /healthz through the HTTP handler, with Lambda's
    Python version and nothing of this machine's site-packages (python -S)."""
    with tempfile.TemporaryDirectory(prefix="stagesync-artefact-") as tmp:
        task = Path(tmp) / "task"
        zipfile.ZipFile(zip_path).extractall(task)
        env = {name: f"placeholder-{name.lower()}" for name in secret_names(secrets)}
        env.update(PATH=os.environ.get("PATH", ""), PSYCOPG_IMPL="binary", HOME=tmp,
                   STAGESYNC_CONFIG=str(task / config_name),
                   STAGESYNC_DATABASE_URL=f"sqlite:///{Path(tmp) / 'smoke.db'}")
        python = os.environ.get("STAGESYNC_LAMBDA_PYTHON", "python3.11")
        run = subprocess.run([python, "-S", "-c", SMOKE, str(task)], cwd=task, env=env, capture_output=True,
                             text=True, timeout=120)
        if run.returncode != 0:
            return [f"the artefact does not run alone: {run.stderr.strip().splitlines()[-1:]}"]
        result = json.loads(run.stdout.strip().splitlines()[-1])
        problems = []
        if result["status"] != 200:
            problems.append(f"GET /healthz through http_handler answered {result['status']}: {result['body']}")
        if result["psycopg"] != "binary":
            problems.append(f"psycopg runs its {result['psycopg']} implementation, not the packaged binary one")
        if result["outside"]:
            problems.append(f"imported from outside the artefact: {', '.join(result['outside'])}")
        return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("sources", "artefact"))
    parser.add_argument("zip", nargs="?", type=Path, default=HERE / ".serverless" / "stagesync.zip")
    parser.add_argument("--config", default="stagesync.toml", help="the packaged configuration, relative to deploy/")
    args = parser.parse_args(argv)
    secrets = HERE / "secrets.yml"
    if args.what == "sources":
        problems = requirement_problems(ROOT / "pyproject.toml", HERE / "requirements.in")
        problems += lock_problems(HERE / "requirements.in", HERE / "requirements.txt")
        problems += config_problems(HERE / args.config, secrets)
        summary = f"sources: requirements.in, its lock, secrets.yml and {args.config} agree"
    else:
        problems, summary = artefact_problems(args.zip, args.config)
        if not problems:
            problems = smoke_problems(args.zip, args.config, secrets)
    if problems:
        print(f"package: {len(problems)} problem(s):", *(f"  - {p}" for p in problems), sep="\n", file=sys.stderr)
        return 1
    print(f"package: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
