"""Plots of the report (matplotlib, Agg backend): accuracy vs parameters, accuracy vs latency
(one panel per device — latencies are never compared across devices), CMC curves, and accuracy
under growing training-set imbalance (BIT Table 7)."""
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
    for src, g in pts.groupby("source", sort=True):
        marker = "o" if src.startswith("vibench") else "s"
        ax.scatter(g[x], g[y], marker=marker, label=str(src))
        for _, r in g.iterrows():
            ax.annotate(str(r["method"]), (r[x], r[y]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")


def accuracy_vs_params(points: list[dict[str, Any]], out_dir: Path) -> list[tuple[Path, str]]:
    """One scatter per protocol: rank-1 (%) against parameters (M).
    `points`: dicts with method, source, protocol, params_m, rank1."""
    df = pd.DataFrame(points, columns=["method", "source", "protocol", "params_m", "rank1"])
    df = df.dropna(subset=["params_m", "rank1"])
    out = []
    for proto, g in df.groupby("protocol", sort=True):
        fig, ax = plt.subplots(figsize=(6, 4))
        _scatter(ax, g, "params_m", "rank1")
        ax.set_xlabel("parameters (M)")
        ax.set_ylabel(f"rank-1 (%) on {proto}")
        ax.set_title(f"Accuracy vs parameters — {proto}")
        ax.legend(fontsize=7)
        path = save_figure(fig, out_dir / f"acc-vs-params-{proto}.png")
        out.append((path, f"Rank-1 vs parameters on {proto}"))
    return out


def accuracy_vs_latency(points: list[dict[str, Any]], out_dir: Path) -> list[tuple[Path, str]]:
    """Rank-1 against ms/query, one panel per device. `points`: method, source, device,
    protocol, ms_per_query, rank1."""
    df = pd.DataFrame(points, columns=["method", "source", "device", "protocol", "ms_per_query",
                                       "rank1"]).dropna(subset=["ms_per_query", "rank1"])
    if df.empty:
        return []
    devices = sorted(df["device"].unique())
    fig, axes = plt.subplots(1, len(devices), figsize=(5 * len(devices), 4), squeeze=False)
    for ax, dev in zip(axes[0], devices):
        g = df[df["device"] == dev]
        _scatter(ax, g, "ms_per_query", "rank1")
        ax.set_xlabel("latency (ms / query)")
        ax.set_ylabel("rank-1 (%)")
        ax.set_title(f"{dev} ({', '.join(sorted(g['protocol'].unique()))})", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Accuracy vs latency (compared within one device only)")
    path = save_figure(fig, out_dir / "acc-vs-latency.png")
    return [(path, "Rank-1 vs latency, one panel per device")]


def cmc_curves(store: StoreSummary, reported: pd.DataFrame, method_map: dict[str, str],
               out_dir: Path) -> list[tuple[Path, str]]:
    """One figure per protocol with vibench CMC curves (complete results only), and the
    papers' reported R1/R5/R10/R20 of the same methods as markers."""
    inv = {v: k for k, v in method_map.items()}
    out = []
    protos = sorted({a.protocol for a in store.aggregates if a.cmc})
    for proto in protos:
        fig, ax = plt.subplots(figsize=(6, 4))
        for a in store.aggregates:
            if a.protocol != proto or not a.cmc or a.rerank:
                continue
            label = a.method + (f" [{a.variant}]" if a.variant else "") + f" ({a.config}; {a.data})"
            line, = ax.plot(range(1, len(a.cmc) + 1), a.cmc, label=label)
            paper = inv.get(a.method)
            rep = reported[(reported["method"] == paper) & (reported["protocol"] == proto)
                           & (reported["role"] == "ours") & reported["variant"].isna()
                           & ~reported["rerank"].astype(bool)
                           & reported["metric"].isin(["rank1", "rank5", "rank10", "rank20"])
                           & reported["value"].notna()] if paper else reported.iloc[0:0]
            if len(rep):
                best = rep.drop_duplicates("metric")
                ks = [int(m[4:]) for m in best["metric"]]
                ax.scatter(ks, best["value"], marker="x", color=line.get_color(),
                           label=f"{paper} reported ({best['table'].iloc[0]})")
        ax.set_xlabel("rank")
        ax.set_ylabel("matching rate (%)")
        ax.set_title(f"CMC — {proto}")
        ax.legend(fontsize=7)
        path = save_figure(fig, out_dir / f"cmc-{proto}.png")
        out.append((path, f"CMC curves on {proto}"))
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
        ax.legend(fontsize=6)
    axes[0].set_ylabel("rank-1 (%)")
    if not drew:
        plt.close(fig)
        return []
    fig.suptitle("Accuracy under growing imbalance (as BIT Table 7)")
    path = save_figure(fig, out_dir / "imbalance.png")
    return [(path, f"Rank-1 under growing training-set imbalance on {proto}")]

