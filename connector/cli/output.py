"""What the commands print: one-line summaries of a run, the dead-letter table, the export in CSV
or JSON. Kept apart from the commands so that each command body stays a call and a print."""

from __future__ import annotations

import csv
import json
from typing import Iterable, TextIO

from connector.errors import mask


def recompute_summary(shop_id: str, result) -> str:
    return (f"recomputed {result.customers:,} customer(s) of {shop_id}: {result.written:,} changed, "
            f"{result.stage_changes:,} stage change(s), {result.queued:,} sync(s) queued")


def dry_run_summary(shop_id: str, result) -> str:
    """`recompute --dry-run`: what a recompute now would change, per model and stage transition."""
    predictions = result.predictions
    lines = [f"dry run: recomputing {result.customers:,} customer(s) of {shop_id} would change {result.written:,}, "
             f"with {result.stage_changes:,} stage change(s), and queue {result.queued:,} sync(s); nothing written"]
    lines += [f"  {transition}: {count:,}" for transition, count in result.transitions.items()]
    if predictions is not None:
        lines.append(f"  predictions ({predictions.status}): {predictions.written:,} customer(s) would change")
    return "\n".join(lines)


def replay_summary(shop_id: str, result) -> str:
    return (f"replayed the stage history of {result.customers:,} customer(s) of {shop_id} on the days it happened: "
            f"{result.changes:,} stage change(s), {result.queued:,} sync(s) queued")


def import_summary(result) -> str:
    return (f"imported {result.imported:,} order(s), {result.unchanged:,} already stored, "
            f"{len(result.rejected):,} rejected")


def backfill_summary(shop, result) -> str:
    return (f"{'resumed: ' if result.resumed else ''}read {result.fetched:,} order(s) of {shop.id} from "
            f"{shop.platform}: {result.stored:,} stored or updated, {result.unchanged:,} already up to date, "
            f"{result.skipped:,} skipped (test orders, drafts, unreadable)")


def poll_summary(shop, result) -> str:
    return (f"polled {shop.id} ({shop.platform}) since {result.since.isoformat() if result.since else '-'}: "
            f"{result.fetched:,} order(s) read, {result.stored:,} stored or updated, "
            f"{result.customers:,} customer(s) re-evaluated")


def sync_summary(stats) -> str:
    return (f"synced {stats.sent:,} contact(s) in {stats.requests:,} request(s), {stats.events:,} event(s); "
            f"{stats.skipped:,} already up to date, {stats.retried:,} to retry, {stats.dead:,} dead letter(s)")


def refusal_lines(stats) -> list[str]:
    """`stagesync sync`'s reasons to exit 1: each destination that refused every contact it was sent
    (a wrong key), once, with why."""
    return [f"{shop_id}/{destination} refused all {run.refused:,} contact(s) it was sent: {run.last_error}"
            for (shop_id, destination), run in sorted(stats.destinations.items()) if run.refused_all]


def destination_error_lines(levels) -> list[str]:
    """Above `stagesync deadletters`' table: each destination's dead letters and last error, one line each."""
    lines = []
    for (shop_id, destination), level in sorted(levels.items()):
        if level.dead or level.last_error:
            error = (f"last error {level.last_error_at:%Y-%m-%d %H:%M} UTC: {level.last_error}"
                     if level.last_error else "no error recorded")
            lines.append(f"{shop_id}/{destination}: {level.dead:,} dead letter(s); {error}"
                         + (" (nothing accepted since)" if level.failing else ""))
    return lines


def dead_letter_lines(letters) -> list[str]:
    """The table of `stagesync deadletters`: one line a letter, the customer masked; letters of one
    destination refused for the same reason (a wrong key) share one line, with their count."""
    groups: dict[tuple, list] = {}
    for d in letters:
        groups.setdefault((d.shop_id, d.destination, d.status, d.error), []).append(d)
    lines = [f"{'id':>8}  {'shop':<16}{'destination':<14}{'customer':<28}{'tries':>5}  {'status':>6}  error"]
    for (shop_id, destination, status, error), same in groups.items():
        d = same[0]
        who = mask(d.customer_key) if len(same) == 1 else f"{len(same):,} contacts (ids {d.id}..{same[-1].id})"
        tries = str(d.attempts) if len(same) == 1 else "-"
        lines.append(f"{d.id:>8}  {shop_id:<16}{destination:<14}{who:<28}{tries:>5}  {status or '-':>6}  {error or ''}")
    return lines


def write_export(rows: Iterable[dict], columns: Iterable[str], fmt: str, stream: TextIO) -> None:
    """`stagesync export`: a JSON array of objects, or CSV with a header, empty cells for None and no
    cell a spreadsheet would take for a formula (connector/services/csv_cells.py)."""
    if fmt == "json":
        json.dump(list(rows), stream, indent=1)
        stream.write("\n")
        return
    from connector.services.csv_cells import spreadsheet_safe

    writer = csv.DictWriter(stream, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:  # a cell a spreadsheet would run as a formula is written as text
        writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
