"""The webhook path (app factory, ingest, sync, Lambda handlers) never imports numpy: predictions
are computed by the daily recompute, and a Lambda cold start pays for every import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_webhook_path_does_not_import_numpy():
    code = ("import sys\n"
            "import connector.web.app, connector.web.lambda_handlers, connector.services.ingest, "
            "connector.services.sync, connector.services.evaluation, connector.services.customer_view\n"
            "from connector.web.dashboard import blueprint\n"
            "print('numpy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
