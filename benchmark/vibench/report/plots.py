"""Plots of the report (matplotlib, Agg backend): accuracy vs parameters, accuracy vs latency
(one scatter per device, config and precision — latencies are never compared across them), CMC
curves (one panel per method, legends outside the data), and accuracy under growing training-set
imbalance (BIT Table 7). Callers pass results on real data only, except the pipeline-check page's
trained-vs-untrained CMC figures."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from vibench.io import write_bytes_atomic  # noqa: E402
from vibench.report.reported import ReportConfig  # noqa: E402
from vibench.report.aggregate import StoreSummary  # noqa: E402


def save_figure(fig: Any, path: Path) -> Path:
    """Write `fig` as PNG atomically (no timestamp metadata, so reruns are byte-stable)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
    return path


def _scatter(ax: Any, pts: pd.DataFrame, x: str, y: str) -> None:
    for i, (src, g) in enumerate(pts.groupby("source", sort=True)):
        marker = "o" if src.startswith("vibench") else "s"
        ax.scatter(g[x], g[y], marker=marker, label=str(src), color=f"C{i % 10}")
        for _, r in g.iterrows():
            ax.annotate(str(r["method"]), (r[x], r[y]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")


def _legend_outside(ax: Any, fig: Any) -> None:
    """The legend below the axes, never over the data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18),
                  ncol=2, frameon=False)


def accuracy_vs_params(points: list[dict[str, Any]], out_dir: Path) -> list[tuple[Path, str]]:
    """One scatter per protocol: rank-1 (%) against parameters (M).
    `points`: dicts with method, source, protocol, params_m, rank1."""
    df = pd.DataFrame(points, columns=["method", "source", "protocol", "params_m", "rank1"])
    df = df.dropna(subset=["params_m", "rank1"])
    out = []
    for proto, g in df.groupby("protocol", sort=True):
        fig, ax = plt.subplots(figsize=(5, 4))
        _scatter(ax, g, "params_m", "rank1")
        ax.set_xlabel("parameters (M)")
        ax.set_ylabel("rank-1 (%)")
        ax.set_title(f"Accuracy vs parameters — {proto}", fontsize=10)
        _legend_outside(ax, fig)
        path = save_figure(fig, out_dir / f"acc-vs-params-{proto}.png")
        out.append((path, f"Rank-1 vs parameters on {proto}"))
    return out


def accuracy_vs_latency(points: list[dict[str, Any]], out_dir: Path) -> list[tuple[Path, str]]:
    """One scatter per (device, config, precision): rank-1 against ms/query — latencies are
    never compared across devices, configs or precisions. `points`: method, source, device,
    config, precision, protocol, ms_per_query, rank1."""
    cols = ["method", "source", "device", "config", "precision", "protocol", "ms_per_query",
            "rank1"]
    df = pd.DataFrame(points, columns=cols).dropna(subset=["ms_per_query", "rank1"])
    out = []
    for (dev, conf, prec), g in df.groupby(["device", "config", "precision"], sort=True):
        fig, ax = plt.subplots(figsize=(5, 4))
        _scatter(ax, g, "ms_per_query", "rank1")
        ax.set_xlabel("latency (ms / query)")
        ax.set_ylabel("rank-1 (%)")
        ax.set_title(f"{dev}\nconfig {conf}, {prec}", fontsize=9)
        _legend_outside(ax, fig)
        name = f"acc-vs-latency-{_slug(f'{dev}-{conf}-{prec}')}.png"
        path = save_figure(fig, out_dir / name)
        out.append((path, f"Rank-1 vs latency on {dev} (config {conf}, {prec}; "
                          f"{', '.join(sorted(g['protocol'].unique()))})"))
    return out


def _slug(text: str) -> str:
    return "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in text).strip("-")[:60]


def cmc_facets(aggregates: list[Any], reported: pd.DataFrame, method_map: dict[str, str],
               out_dir: Path, *, prefix: str = "cmc", untrained: bool = False,
               max_cols: int = 3) -> list[tuple[Path, str]]:
    """One figure per protocol, one panel per method (so every series is distinguishable):
    the vibench CMC curve of each (config, data) and, where the paper reports R1/R5/R10/R20
    and `untrained` is off, those as crosses; with `untrained`, the untrained reference's
    rank-1/5/10/20 as a dashed line. Legends sit below each panel."""
    inv = {v: k for k, v in method_map.items()}
    out = []
    for proto in sorted({a.protocol for a in aggregates if a.cmc and not a.rerank}):
        per_method: dict[str, list[Any]] = {}
        for a in aggregates:
            if a.protocol == proto and a.cmc and not a.rerank:
                per_method.setdefault(a.method + (f" [{a.variant}]" if a.variant else ""),
                                      []).append(a)
        n = len(per_method)
        ncols = min(max_cols, n)
        nrows = (n + ncols - 1) // ncols
        fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.6 * nrows), squeeze=False,
                                 sharey=True)
        for ax, (label, aggs) in zip(axes.flat, sorted(per_method.items())):
            for i, a in enumerate(aggs):
                line, = ax.plot(range(1, len(a.cmc) + 1), a.cmc, color=f"C{i % 10}",
                                label=f"{a.config}; {a.data}")
                if untrained and a.untrained:
                    ks = [1, 5, 10, 20]
                    ax.plot(ks, [a.untrained[f"rank{k}"] for k in ks], "--", marker=".",
                            color=line.get_color(), label="untrained")
            paper = inv.get(aggs[0].method)
            if paper and not untrained:
                rep = reported[(reported["method"] == paper) & (reported["protocol"] == proto)
                               & (reported["role"] == "ours") & reported["variant"].isna()
                               & ~reported["rerank"].astype(bool)
                               & reported["metric"].isin(["rank1", "rank5", "rank10", "rank20"])
                               & reported["value"].notna()].drop_duplicates("metric")
                if len(rep):
                    ax.scatter([int(m[4:]) for m in rep["metric"]], rep["value"], marker="x",
                               color="k", label=f"paper ({rep['table'].iloc[0]})")
            ax.set_title(label, fontsize=10)
            ax.set_xlabel("rank")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        for ax in axes[:, 0]:
            ax.set_ylabel("matching rate (%)")
        fig.suptitle(f"CMC — {proto}", fontsize=11)
        fig.tight_layout()
        path = save_figure(fig, out_dir / f"{prefix}-{proto}.png")
        what = "trained (solid) vs untrained (dashed)" if untrained else "vibench vs the paper"
        out.append((path, f"CMC curves on {proto}, one panel per method: {what}"))
    return out


def imbalance_plot(reported: pd.DataFrame, store: StoreSummary, cfg: ReportConfig,
                   out_dir: Path) -> list[tuple[Path, str]]:
    """Rank-1 against % of training images removed, IR and VIS reductions side by side,
    per method (reported: solid; vibench: dashed)."""
    if not cfg.imbalance_variants or not cfg.imbalance_protocols:
        return []
    proto = cfg.imbalance_protocols[0]
    variants = {v.get("name"): v for v in cfg.imbalance_variants}
    tables = set(reported.loc[reported["variant"].isin([k for k in variants if k]), "table"])
    rep = reported[reported["table"].isin(tables) & (reported["protocol"] == proto)
                   & (reported["metric"] == "rank1") & reported["value"].notna()]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    drew = False
    for ax, modality in zip(axes, ("infrared", "visible")):
        for method, g in rep.groupby("method", sort=True):
            xs, ys = [], []
            for _, r in g.iterrows():
                v = variants.get(r["variant"] if isinstance(r["variant"], str) else None)
                if v and v.get("modality") in (modality, "none"):
                    xs.append(float(v["removed"]))
                    ys.append(float(r["value"]))
            if xs:
                order = sorted(zip(xs, ys))
                ax.plot([p[0] for p in order], [p[1] for p in order], marker="o", label=method)
                drew = True
        for method in sorted({a.method for a in store.aggregates}):
            pts = []
            for name, v in variants.items():
                if v.get("modality") not in (modality, "none"):
                    continue
                a = store.lookup(method, proto, name)
                if a is not None and a.values.get("rank1") is not None:
                    pts.append((float(v["removed"]), a.values["rank1"]))
            if pts:
                pts.sort()
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "--", marker="^",
                        label=f"{method} (vibench)")
                drew = True
        ax.set_xlabel(f"% of {modality} training images removed")
        ax.set_title(f"{modality} reduction ({proto})")
        _legend_outside(ax, fig)
    axes[0].set_ylabel("rank-1 (%)")
    if not drew:
        plt.close(fig)
        return []
    fig.suptitle("Accuracy under growing imbalance (as BIT Table 7)")
    path = save_figure(fig, out_dir / "imbalance.png")
    return [(path, f"Rank-1 under growing training-set imbalance on {proto}")]

