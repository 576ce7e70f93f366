"""The pipeline check: every result computed on synthetic data, and nowhere else.

Synthetic identities are generated images, so a number on them says nothing about a method's
accuracy on SYSU-MM01, RegDB or LLCM. What it can show is that the whole pipeline (data layout,
protocol lists, training, feature extraction, evaluation, store) runs end to end and that
training changes the model in the right direction: the trained model is compared with the same
network *untrained* (same seed, same data and lists; ``vibench run --untrained-reference``).
No difference to the papers' numbers and no pass/fail against them is ever computed here.
"""
from __future__ import annotations

from typing import Any

from vibench.report.reported import ReportConfig
from vibench.report.aggregate import Aggregate, StoreSummary
from vibench.report.tables import DASH, Cell, DisplayTable, fmt, value_cell

SHOWS = ("Every stage ran end to end on data in the real datasets' layout: data loading, "
         "protocol lists, training, feature extraction, ranking, metrics and the result store.",
         "Whether training helps on this data: the trained model against the same network "
         "untrained (same seed, same lists). 'learned' = trained rank-1 and mAP both above the "
         "untrained reference.")
DOES_NOT_SHOW = ("Anything about a method's accuracy on SYSU-MM01, RegDB or LLCM: synthetic "
                 "identities are generated images, and these galleries are tiny (rank-20 often "
                 "saturates at 100%).",
                 "Whether vibench reproduces a paper: these numbers are never compared with, "
                 "ranked among or plotted against the papers' numbers.",
                 "Costs of the papers' configs: the pipeline runs use small configs (see the "
                 "Config column).")


def learned(a: Aggregate) -> str:
    """'yes' when trained rank-1 and mAP both exceed the untrained reference, 'no' when not,
    '' when either side is missing."""
    keys = ("rank1", "mAP")
    if any(a.values.get(k) is None or a.untrained.get(k) is None for k in keys):
        return ""
    return "yes" if all(a.values[k] > a.untrained[k] for k in keys) else "no"


def _diff(t: float | None, u: float | None) -> Cell:
    if t is None or u is None:
        return Cell(DASH)
    d = t - u
    return Cell(f"{d:+.1f}", d, "num " + ("up" if d > 0 else "down"),
                "trained − untrained, points")


PARTIAL_MARK = "*"


def _partial_cells(a: Aggregate) -> list[Cell] | None:
    """The six number cells and the verdict of an incomplete result from the trials/splits it
    has (marked with PARTIAL_MARK), or None when it has none."""
    values, trials = a.present_values()
    if not values:
        return None
    base, _ = a.present_values(untrained=True)
    what = "splits" if a.dataset == "regdb" else "trials"
    tip = (f"mean over {what} {', '.join(map(str, trials))} only "
           f"(of {len(a.expected)}; incomplete, never ranked)")

    def num(v: float | None) -> Cell:
        return Cell(DASH) if v is None else Cell(fmt(v) + PARTIAL_MARK, v, "vb partial", tip)

    keys = ("rank1", "mAP")
    verdict = ("" if not base else
               "yes" if all(values[k] > base[k] for k in keys) else "no")
    out = []
    for k in keys:
        out += [num(values[k]), num(base.get(k)), _diff(values[k], base.get(k))]
    return out + [Cell(verdict or DASH, None, f"verdict {verdict}")]


def pipeline_table(store: StoreSummary, cfg: ReportConfig) -> DisplayTable:
    """One row per synthetic result (method, variant, protocol, re-ranking, config, data):
    trained and untrained rank-1 and mAP, their difference, and the verdict."""
    inv = {v: k for k, v in cfg.vibench_methods.items()}
    rows = []
    for a in sorted(store.synthetic, key=lambda a: (a.method, a.protocol, str(a.variant),
                                                    a.rerank, a.config, a.data)):
        name = inv.get(a.method, a.method) + (f" [{a.variant}]" if a.variant else "") + \
            (" RR" if a.rerank else "")
        verdict = learned(a)
        numbers = None if a.complete else _partial_cells(a)
        if numbers is None:
            numbers = [value_cell(a, "rank1"), value_cell(a, "rank1", untrained=True),
                       _diff(a.values.get("rank1"), a.untrained.get("rank1")), value_cell(a, "mAP"),
                       value_cell(a, "mAP", untrained=True), _diff(a.values.get("mAP"), a.untrained.get("mAP")),
                       Cell(verdict or DASH, None, f"verdict {verdict}")]
        rows.append([Cell(name, None, "m"),
                     Cell(cfg.short_name(a.protocol), None, "",
                          f"{cfg.long_name(a.protocol)} (protocol id {a.protocol})"),
                     *numbers, Cell(a.config), Cell(a.data)])
    header = ["Method", "Protocol", "R1 trained", "R1 untrained", "R1 gain", "mAP trained",
              "mAP untrained", "mAP gain", "Learned", "Config", "Data"]
    display = ["Method", "Protocol", "trained", "untrained", "gain", "trained", "untrained",
               "gain", "Learned", "Config", "Data"]
    groups = [("", 2, ""), ("Rank-1 (%)", 3, ""), ("mAP (%)", 3, ""), ("", 3, "")]
    return DisplayTable("pipeline", "Trained vs untrained on synthetic data", header, rows,
                        caption="Each number links to its provenance (config, data source, "
                                "commit, hardware). '—' in 'untrained': the run was made "
                                f"without --untrained-reference. {PARTIAL_MARK} = mean over the "
                                "trials or splits that were run only (e.g. RegDB split 1 of 10 in "
                                "the smoke suite; hover for which).",
                        display=display, groups=groups, frozen=1)


def pipeline_costs_table(stats: list[dict[str, Any]], cfg: ReportConfig) -> DisplayTable:
    """Parameters and latency measured in the synthetic runs (small configs), labelled with
    config, device and precision."""
    inv = {v: k for k, v in cfg.vibench_methods.items()}
    rows = []
    for s in stats:
        rows.append([Cell(inv.get(s["method"], s["method"]), None, "m"), Cell(s["config"]),
                     Cell(s["data"]), Cell(s["device"]), Cell(s.get("precision") or "not recorded"),
                     Cell(fmt(s["params_registered_m"], 2), s["params_registered_m"], "num"),
                     Cell(fmt(s["params_effective_m"], 2), s["params_effective_m"], "num"),
                     Cell(fmt(s["ms_per_query"], 2), s["ms_per_query"], "num")])
    header = ["Method", "Config", "Data", "Device", "Precision", "Params registered (M)",
              "Params effective (M)", "Latency (ms/query)"]
    return DisplayTable("pipeline-costs", "Costs measured in the pipeline runs", header, rows,
                        caption="Small pipeline configs: not the papers' models; see the costs "
                                "page for the paper configs.", frozen=1)

