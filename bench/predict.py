#!/usr/bin/env python
"""Benchmark: the predictions' fit + predict for a large shop, against `lifetimes` 0.11.3 on the
same orders in the same run.

    .venv/bin/python bench/predict.py [--customers 250000] [--seed 11] [--no-record]

1. Generates a seeded shop (numpy's Generator): each customer's first order on a day of the two
   years before now, then a BG/NBD purchase process in continuous time (rate lambda ~ Gamma,
   drop-out probability p ~ Beta after each repeat order), amounts from a Gamma-Gamma spend
   process (a per-customer mean, Gamma-distributed orders), a few zero-amount orders and a few
   unknown amounts; about 4 orders per customer (1M orders for 250,000 customers). Written to an
   .npz: customer index, placed_at in UTC microseconds, amount (NaN: unknown).
2. Runs each contender in its own child process, which loads the orders and then times, after
   loading, every step from the orders to every customer's fields:
   - `stagesync`: `shop_inputs_from_orders` + `predict_shop` (minimum-data rule, both fits with
     their checks, p_alive, expected orders at 90 and 365 days, CLV, churn risk and band, next
     order date);
   - `lifetimes`: `summary_data_from_transaction_data` (daily, to d_now) + `BetaGeoFitter.fit` +
     `GammaGammaFitter.fit` (repeaters with m > 0) + p_alive, expected orders at 90 and 365 days
     and the expected order value, as its documentation shows them (one row per customer);
   - `lifetimes grouped`: the same fits given stagesync's grouping (one row per distinct
     (x, t_x, T), `weights` = how many customers share it): how much of the difference is the
     grouping and how much the rest.
   A second `stagesync` child measures memory with tracemalloc (numpy's arrays included): the
   peak allocated above what the loaded orders hold.
3. Cross-checks that the fits agree (parameters within 1%), prints a table and appends a dated
   section to bench/RESULTS.md (unless --no-record).

Each child's wall time, CPU time and peak RSS come from os.wait4; the timed part is measured
inside the child with time.perf_counter / process_time. Every child runs with one BLAS/OpenMP
thread (OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=1), as on Lambda. No timing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.child import machine as described, run_measured  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
DAY_US = 86_400 * 1_000_000
TARGET_RATIO = 5.0  # lifetimes' time / stagesync's, at least
TARGET_MIB = 200.0  # peak memory over the loaded orders, at most
# The generating process, per week (CDNOW-like, tuned for about 4 orders per customer over 2 years).
R, ALPHA, A, B = 0.96, 9.0, 0.8, 3.0
P_SPEND, Q_SPEND, V_SPEND = 6.0, 4.0, 30.0


def generate(customers: int, seed: int, now_us: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    first_day = (now_us // DAY_US) - rng.integers(1, 730, customers)
    lam = rng.gamma(R, 1 / ALPHA, customers) / 7  # orders per day
    p = rng.beta(A, B, customers)
    nu = rng.gamma(Q_SPEND, 1 / V_SPEND, customers)  # the spend process's per-customer rate
    start = first_day * DAY_US + rng.integers(0, DAY_US, customers)
    who = [np.arange(customers)]
    when = [start]
    time_us = start.astype(np.float64)
    active = np.arange(customers)
    while active.size:
        time_us[active] += rng.exponential(1 / lam[active]) * DAY_US
        active = active[time_us[active] < now_us]
        who.append(active)
        when.append(time_us[active].astype(np.int64))
        active = active[rng.random(active.size) >= p[active]]
    customer = np.concatenate(who)
    placed = np.concatenate(when)
    amount = np.round(rng.gamma(P_SPEND, 1 / nu[customer]), 2)
    amount[rng.random(amount.size) < 0.01] = 0.0  # a zero-total order counts
    amount[rng.random(amount.size) < 0.002] = np.nan  # a currency without a rate: no amount
    order = rng.permutation(customer.size)  # as a database returns them: in no useful order
    return {"customer": customer[order], "placed_us": placed[order], "amount": amount[order],
            "now_us": np.array(now_us)}


# --- children --------------------------------------------------------------------------------

def load(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    data = np.load(path)
    return data["customer"], data["placed_us"], data["amount"], int(data["now_us"])


def stagesync_child(path: str, memory: bool) -> dict:
    import tracemalloc

    from connector.domain import predictions as P

    if memory:
        tracemalloc.start()
    customer, placed, amount, now_us = load(path)
    loaded = tracemalloc.get_traced_memory()[0] if memory else 0
    if memory:
        tracemalloc.reset_peak()
    wall, cpu = time.perf_counter(), time.process_time()
    shop = P.shop_inputs_from_orders(customer, placed, amount, now_us)
    inputs_s = time.perf_counter() - wall
    result = P.predict_shop(shop)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = {"wall": wall, "cpu": cpu, "inputs": inputs_s, "status": result.status, "reason": result.reason,
           "customers": result.customers, "orders": int(customer.size)}
    if memory:
        peak = tracemalloc.get_traced_memory()[1]
        out.update(loaded_mib=loaded / 2**20, peak_over_loaded_mib=(peak - loaded) / 2**20)
    if result.bgnbd:
        out["bgnbd"] = [result.bgnbd.r, result.bgnbd.alpha, result.bgnbd.a, result.bgnbd.b]
        out["gamma_gamma"] = [result.gamma_gamma.p, result.gamma_gamma.q, result.gamma_gamma.v]
        out["bands"] = result.churn_bands()
    return out


def lifetimes_child(path: str, grouped: bool) -> dict:
    import warnings

    import pandas as pd

    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    customer, placed, amount, now_us = load(path)
    wall, cpu = time.perf_counter(), time.process_time()
    before = placed < now_us
    frame = pd.DataFrame({"customer": customer[before], "date": pd.to_datetime(placed[before], unit="us"),
                          "amount": amount[before]})
    d_now = pd.Timestamp((now_us - 1) // DAY_US, unit="D")
    summary = summary_data_from_transaction_data(frame, "customer", "date", monetary_value_col="amount",
                                                 observation_period_end=d_now, freq="D")
    x = summary["frequency"].to_numpy()
    t_x = summary["recency"].to_numpy() / 7
    T = summary["T"].to_numpy() / 7  # noqa: N806
    m = summary["monetary_value"].to_numpy()
    inputs_s = time.perf_counter() - wall
    if grouped:
        keys, inverse, weights = np.unique(np.column_stack([x, t_x, T]), axis=0, return_inverse=True,
                                           return_counts=True)
        bg = BetaGeoFitter().fit(keys[:, 0], keys[:, 1], keys[:, 2], weights=weights)
        alive_g = bg.conditional_probability_alive(keys[:, 0], keys[:, 1], keys[:, 2])
        e90_g = bg.conditional_expected_number_of_purchases_up_to_time(90 / 7, keys[:, 0], keys[:, 1], keys[:, 2])
        e365_g = bg.conditional_expected_number_of_purchases_up_to_time(365 / 7, keys[:, 0], keys[:, 1], keys[:, 2])
        inverse = inverse.reshape(-1)
        alive, e90, e365 = np.asarray(alive_g)[inverse], np.asarray(e90_g)[inverse], np.asarray(e365_g)[inverse]
    else:
        bg = BetaGeoFitter().fit(x, t_x, T)
        alive = bg.conditional_probability_alive(x, t_x, T)
        e90 = bg.conditional_expected_number_of_purchases_up_to_time(90 / 7, x, t_x, T)
        e365 = bg.conditional_expected_number_of_purchases_up_to_time(365 / 7, x, t_x, T)
    repeat = (x > 0) & (m > 0)
    gg = GammaGammaFitter().fit(x[repeat], m[repeat])
    value = gg.conditional_expected_average_profit(x, np.where(x > 0, m, 0.0))
    clv = np.asarray(e365) * np.asarray(value)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "inputs": inputs_s, "customers": int(x.size), "orders": int(customer.size),
            "bgnbd": [float(bg.params_[k]) for k in ("r", "alpha", "a", "b")],
            "gamma_gamma": [float(gg.params_[k]) for k in ("p", "q", "v")],
            "finite": bool(np.all(np.isfinite(alive)) and np.all(np.isfinite(e90)) and np.all(np.isfinite(clv)))}


# --- the parent ------------------------------------------------------------------------------

def run_child(argv: list[str], timeout: float) -> dict:
    """One child to completion (killed after `timeout` s), measured with os.wait4."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    run = run_measured(argv, cwd=ROOT, env=env, timeout=timeout)
    if run.returncode != 0:
        raise SystemExit(f"child {argv[-3:]} failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    result.update(process_wall=run.wall, process_cpu=run.cpu, rss_mib=run.rss_mib, load=run.load)
    return result


def machine() -> str:
    info = described()
    return (f"{info['nproc']} CPU(s) ({info['cpu']}), {info['memory']} memory, Python {info['python']}, "
            f"numpy {np.__version__}, {info['os']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=250_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--skip-plain-lifetimes", action="store_true",
                        help="only the grouped lifetimes run (the plain one takes minutes at full size)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "NPZ"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, path = args.child
        result = (stagesync_child(path, memory=kind == "stagesync-memory") if kind.startswith("stagesync")
                  else lifetimes_child(path, grouped=kind == "lifetimes-grouped"))
        print(json.dumps(result))
        return 0

    command = shlex.join([".venv/bin/python", "bench/predict.py", *(argv if argv is not None else sys.argv[1:])])
    now = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="stagesync-bench-predict-") as work:
        path = str(Path(work) / "orders.npz")
        started = time.perf_counter()
        np.savez(path, **generate(args.customers, args.seed, int(now.timestamp()) * 1_000_000))
        generated = time.perf_counter() - started
        me = [sys.executable, str(Path(__file__).resolve()), "--child"]
        kinds = ["stagesync", "stagesync-memory", "lifetimes-grouped"]
        if not args.skip_plain_lifetimes:
            kinds.append("lifetimes")
        runs = {}
        for kind in kinds:
            print(f"running {kind} ...", flush=True)
            runs[kind] = run_child(me + [kind, path], args.timeout)
            print(f"  {json.dumps(runs[kind])}", flush=True)

    ours = runs["stagesync"]
    lines = [
        "| contender | timed s (inputs s) | timed CPU s | process wall s | process CPU s | peak RSS MiB | load | "
        "lifetimes / stagesync (timed wall; CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for kind, run in runs.items():
        ratio = "" if kind.startswith("stagesync") else (
            f"{run['wall'] / ours['wall']:.1f}x; {run['cpu'] / ours['cpu']:.1f}x")
        lines.append(f"| {kind} | {run['wall']:.2f} ({run['inputs']:.2f}) | {run['cpu']:.2f} | "
                     f"{run['process_wall']:.2f} | {run['process_cpu']:.2f} | {run['rss_mib']:.0f} | "
                     f"{run['load']:.1f} | {ratio} |")
    mem = runs["stagesync-memory"]
    verdict = [f"- {ours['orders']:,} orders, {ours['customers']:,} customers with orders; stagesync status "
               f"{ours['status']}{'' if ours['reason'] is None else ' (' + ours['reason'] + ')'}; churn bands "
               f"{ours.get('bands')}"]
    for kind in ("lifetimes", "lifetimes-grouped"):
        if kind in runs:
            run = runs[kind]
            close = all(abs(o - t) <= 0.01 * abs(t) for o, t in zip(ours["bgnbd"] + ours["gamma_gamma"],
                                                                    run["bgnbd"] + run["gamma_gamma"]))
            ratio = run["wall"] / ours["wall"]
            verdict.append(f"- {kind}: {ratio:.1f}x stagesync's time (target >= {TARGET_RATIO:.0f}x: "
                           f"{'met' if ratio >= TARGET_RATIO else 'MISSED'}); parameters "
                           f"{'agree within 1%' if close else 'DIFFER'}: stagesync "
                           f"{[round(v, 4) for v in ours['bgnbd'] + ours['gamma_gamma']]}, {kind} "
                           f"{[round(v, 4) for v in run['bgnbd'] + run['gamma_gamma']]}")
    verdict.append(f"- stagesync memory (tracemalloc, numpy included): loaded orders {mem['loaded_mib']:.1f} MiB, "
                   f"peak {mem['peak_over_loaded_mib']:.1f} MiB over them (target <= {TARGET_MIB:.0f} MB: "
                   f"{'met' if mem['peak_over_loaded_mib'] * 2**20 <= TARGET_MIB * 1e6 else 'MISSED'})")
    notes = [f"Command: `{command}`", "", f"Machine: {machine()}.",
             f"Orders generated in {generated:.1f} s (seed {args.seed}), evaluated at {now:%Y-%m-%dT%H:%M:%SZ}. "
             f"Load average (1 min) before the run: {load_before:.1f}; `load`: when each child ended.",
             "Timed: from the loaded arrays to every customer's fields, inside the child. Every child has one "
             "BLAS/OpenMP thread."]
    print("\n".join(notes + [""] + lines + [""] + verdict))
    if not args.no_record:
        stamp = datetime.now(timezone.utc)
        section = [f"## Predictions: fit + predict, {ours['customers']:,} customers, {ours['orders']:,} orders "
                   f"({stamp:%Y-%m-%d %H:%M} UTC, `bench/predict.py`)", "", *notes, "", *lines, "", *verdict, ""]
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write("\n" + "\n".join(section))
        print(f"\nappended to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
