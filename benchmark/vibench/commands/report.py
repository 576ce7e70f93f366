"""``vibench report [--results DIR] [--out DIR]``: render leaderboards (Markdown, HTML, CSV,
JSON, plots) from the result store and the reported-results registry."""
from __future__ import annotations

from pathlib import Path

import click

from vibench.paths import REPORTED_DIR, REPORTS_DIR, RESULTS_DIR


@click.command("report")
@click.option("--results", "results", type=click.Path(file_okay=False, path_type=Path),
              default=RESULTS_DIR / "store", show_default=True,
              help="Result store written by `vibench run` (contains cells/). While it does not "
                   "exist only the reported numbers are rendered.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default=REPORTS_DIR, show_default=True, help="Output folder.")
@click.option("--registry", "registry", type=click.Path(file_okay=False, exists=True,
                                                         path_type=Path),
              default=REPORTED_DIR, show_default=True,
              help="Reported-results registry folder (<paper>.yaml + report.yaml).")
@click.option("--no-plots", is_flag=True, help="Skip plots and retrieval grids (faster).")
def report_cmd(results: Path | None, out: Path, registry: Path, no_plots: bool) -> None:
    """Render leaderboards and the papers' tables with reproduced numbers."""
    from vibench.report.build import build_report

    res = build_report(results, out, registry, plots_enabled=not no_plots)
    for note in res.notes:
        click.echo(f"note: {note}")
    click.echo(f"wrote {len(res.files)} files to {out} (open {out / 'index.html'})")
