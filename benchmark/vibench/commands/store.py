"""`vibench store verify DIR`: check every cell of a result store against its manifest."""
from __future__ import annotations

from pathlib import Path

import click

from vibench.errors import VibenchError
from vibench.store import check_cells, check_store_root


@click.group("store")
def store() -> None:
    """Inspect a result store."""


@store.command("verify")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--quick", is_flag=True, help="Do not hash checkpoints and features (only check presence and size).")
@click.pass_context
def verify_cmd(ctx: click.Context, out: Path, quick: bool) -> None:
    """Verify every cell of store OUT: each file its DONE manifest lists (size, sha256), every
    document's structure, stray entries. Lists each damaged file and what is wrong; exits 1 on
    damage (`vibench run` recomputes exactly the damaged parts)."""
    if not Path(out).is_dir():
        raise VibenchError(f"{out}: no such result store directory")
    check_store_root(out)
    counts: dict[str, int] = {}
    for check in check_cells(out, deep=not quick):
        counts[check.status] = counts.get(check.status, 0) + 1
        if check.status != "ok":
            click.echo(check.describe())
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no cells"
    click.echo(f"{out}: {summary}")
    if counts.get("damaged") or counts.get("stray"):
        ctx.exit(1)
