"""The one-machine recipe of deploy/README.md holds together: the env file belongs to the user that
the systemd units and the crontab run as, so that each of them can read it."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "deploy" / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## One machine instead", 1)[1]


def test_the_env_file_belongs_to_the_user_every_job_runs_as():
    created = re.search(r"install -m 600 -o (\S+) -g \S+ /dev/null (\S+)", SECTION)
    assert created, "the recipe creates the env file owned by the service user"
    owner, env_file = created.groups()
    assert re.search(rf"useradd .*\b{owner}\s*(#|$)", SECTION, re.M), "the recipe creates that user"
    units = re.findall(r"^User=(\S+)", SECTION, re.M)
    assert units and set(units) == {owner}
    assert set(re.findall(r"^EnvironmentFile=(\S+)", SECTION, re.M)) == {env_file}
    assert f"crontab -u {owner} -e" in SECTION
    cron = SECTION.split("```cron", 1)[1].split("```", 1)[0]
    jobs = [line for line in cron.splitlines() if line.strip()]
    assert jobs and all(f". {env_file} " in job for job in jobs)
