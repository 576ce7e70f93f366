"""``vibench report [--results DIR] [--out DIR] [--site DIR]``: render the leaderboards from the
result store and the reported-results registry: Markdown and CSV/JSON tables (``--out``, the
repository's reports/), and with ``--site`` a self-contained static site (HTML, plots, retrieval
grids, the raw-rankings archive) for publishing."""
from __future__ import annotations

from pathlib import Path

import click

from vibench.paths import REPORTED_DIR, REPORTS_DIR, RESULTS_DIR
from vibench.report.build import build_report
from vibench.report.costs import paper_config_counts
from vibench.report.reported import load_report_config
from vibench.store import check_store_root


@click.command("report")
@click.option("--results", "results", type=click.Path(file_okay=False, path_type=Path),
              default=RESULTS_DIR / "store", show_default=True,
              help="Result store written by `vibench run` (contains cells/). While it does not "
                   "exist only the reported numbers are rendered.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Folder for the Markdown and CSV/JSON tables (default {REPORTS_DIR} when "
                   "--site is not given).")
@click.option("--site", "site", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Render the static site (HTML, plots, grids, rankings archive, and the "
                   "tables) into this folder; binary files, keep them out of git.")
@click.option("--registry", "registry", type=click.Path(file_okay=False, exists=True,
                                                         path_type=Path),
              default=REPORTED_DIR, show_default=True,
              help="Reported-results registry folder (<paper>.yaml + report.yaml).")
@click.option("--no-plots", is_flag=True, help="Skip plots and retrieval grids (faster).")
def report_cmd(results: Path | None, out: Path | None, site: Path | None, registry: Path,
               no_plots: bool) -> None:
    """Render leaderboards and the papers' tables with reproduced numbers."""
    if out is None and site is None:
        out = REPORTS_DIR
    if results is not None:
        check_store_root(results)  # before the (slow) parameter counts
    cfg = load_report_config(registry / "report.yaml")
    counts = paper_config_counts(sorted(set(cfg.vibench_methods.values())))
    for folder, as_site in ((out, False), (site, True)):
        if folder is None:
            continue
        res = build_report(results, folder, registry, site=as_site, plots_enabled=not no_plots,
                           param_counts=counts)
        for note in res.notes:
            click.echo(f"note: {note}")
        where = f" (open {folder / 'index.html'})" if as_site else ""
        click.echo(f"wrote {len(res.files)} files to {folder}{where}")
