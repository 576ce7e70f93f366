"""`vibench data`: `check` (validate a real or generated tree) and `synth` (generate one).

`synth` lives in :mod:`vibench.commands.synth` and is imported only when asked for, so
`vibench data check` works (and stays fast) whether or not the generator is installed.
"""
from __future__ import annotations

import importlib
import json

import click

from vibench.data.check import check_dataset

#: lazily imported sub-commands: name -> ("module:attribute", one-line help)
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("vibench.commands.synth:synth", "Generate a synthetic dataset tree in the real layout."),
}


class DataGroup(click.Group):
    """A click group whose lazily imported commands are listed without being imported."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None or name not in LAZY_COMMANDS:
            return cmd
        module, attr = LAZY_COMMANDS[name][0].split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise click.ClickException(f"`vibench data {name}` is unavailable: {exc}") from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, LAZY_COMMANDS[n][1] if n in LAZY_COMMANDS else
                 (self.commands[n].get_short_help_str(60))) for n in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


class CheckFailed(click.ClickException):
    """`data check` found problems: exit code 1 (a usage error such as an unknown name is 2)."""

    exit_code = 1


@click.group(cls=DataGroup)
def data() -> None:
    """Check real dataset trees; generate synthetic ones."""


@data.command("check")
@click.option("--dataset", "dataset", required=True, metavar="{sysu,regdb,llcm}", help="Dataset layout.")
@click.option("--root", required=True, type=click.Path(path_type=str), help="Dataset root folder.")
@click.option("--deep", is_flag=True, help="Also decode every image (slow on real data).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON report.")
def check_cmd(dataset: str, root: str, deep: bool, as_json: bool) -> None:
    """Validate a dataset tree; print its summary and EVERY problem; exit 1 if any."""
    report = check_dataset(dataset, root, deep=deep)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        click.echo(report.format_text())
    if not report.ok:
        raise CheckFailed(f"{len(report.problems)} problem(s) found in the {report.dataset} tree at {report.root}")
