"""Checkpoint selection: the benchmark's last-epoch number beside "best-on-test".

vibench reports the model after the last epoch: choosing an epoch by its test-set score tunes on
the test set. The AGW, PMT and AMINet codes keep the epoch with the best test score instead; a
cell run with ``vibench run --eval-every N`` stores its test metrics during training (curve.json),
and this table shows both numbers and the gap, a number none of the forks reports. Rows are one
per cell and protocol (RegDB split cells are listed separately).
"""
from __future__ import annotations

from typing import Sequence

from vibench.report.reported import ReportConfig
from vibench.report.tables import Cell, DisplayTable, fmt
from vibench.store import StoredCell, curve_summary

RULE = ("Results are the model after the last epoch (the benchmark's rule: no checkpoint is "
        "chosen by its test score). 'Best-on-test' is each metric's best over the epochs evaluated "
        "with --eval-every (its epoch shown for mAP), the selection the AGW, PMT and AMINet codes "
        "make; it is shown only here, never in a leaderboard.")


def selection_table(cells: Sequence[StoredCell], cfg: ReportConfig, table_id: str = "selection") -> DisplayTable:
    """Per cell with a curve and protocol: last-epoch mAP and R1, best-on-test mAP and its epoch,
    the gap (best - last, points)."""
    rows = []
    for c in sorted((c for c in cells if c.curve), key=lambda c: c.path.name):
        protocols = sorted({p for pt in c.curve["points"] for p in pt.get("protocols", {})})
        for p in protocols:
            m = curve_summary(c.curve, p, "mAP")
            r = curve_summary(c.curve, p, "rank1")
            if m is None or r is None:
                continue
            vals = [100 * m["last"], 100 * r["last"], 100 * m["best"], 100 * r["best"], 100 * m["gap"]]
            rows.append([Cell(c.method, None, "m"), Cell(cfg.short_name(p), None, "", f"{cfg.long_name(p)} ({p})"),
                         Cell(f"{c.config_label} · {c.data_label} · split {c.cell['split']}"),
                         Cell(str(m["last_epoch"]), m["last_epoch"], "num"),
                         *[Cell(fmt(v), v, "num") for v in vals[:2]],
                         Cell(str(m["best_epoch"]), m["best_epoch"], "num"),
                         *[Cell(fmt(v), v, "num") for v in vals[2:]]])
    header = ["Method", "Protocol", "Config · data · split", "Last epoch", "mAP (last)", "R1 (last)",
              "Best epoch (mAP)", "mAP (best-on-test)", "R1 (best-on-test)", "Gap mAP"]
    notes = [] if rows else ["No cell in the store was run with --eval-every."]
    return DisplayTable(table_id, "Checkpoint selection: last epoch vs best-on-test", header, rows,
                        caption=RULE, notes=notes, frozen=1)
