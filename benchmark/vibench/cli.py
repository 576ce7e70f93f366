"""The ``vibench`` command. Each sub-command lives next to the subsystem it drives and is
imported only when used, so ``vibench --help`` stays fast and torch-free."""
from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from vibench import __version__
from vibench.errors import VibenchError, did_you_mean
from vibench.runner.threads import prepare_environment

#: command name -> ("module:attribute" of a click command or group, one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("vibench.commands.data:data", "Check real dataset trees; generate synthetic ones."),
    "protocols": ("vibench.commands.protocols:protocols", "List protocols; show materialised query/gallery lists."),
    "eval": ("vibench.commands.metrics:eval_cmd", "Evaluate features computed elsewhere on any protocol."),
    "score": ("vibench.commands.metrics:score_cmd", "Re-score stored raw rankings (no model needed)."),
    "methods": ("vibench.commands.methods:methods", "List methods with parameter counts and latency."),
    "train": ("vibench.commands.methods:train_cmd", "Train and evaluate one method on one dataset."),
    "run": ("vibench.commands.run:run_cmd", "Run the method x protocol matrix into a result store."),
    "suites": ("vibench.commands.run:suites_cmd", "Print what each suite (smoke, ci, paper) covers."),
    "check": ("vibench.commands.run:check_cmd", "Regression check of metrics against a baseline."),
    "baseline": ("vibench.commands.run:baseline_cmd", "Refresh the committed regression baseline."),
    "report": ("vibench.commands.report:report_cmd", "Render leaderboards (Markdown, HTML, CSV, JSON)."),
    "store": ("vibench.commands.store:store", "Verify a result store (every cell against its manifest)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module, attr = entry[0].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Static help strings: listing commands imports none of them.
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            ctx.fail(f"no such command {name!r}{did_you_mean(name, COMMANDS)}")
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vibench")
def cli() -> None:
    """vibench: reproducible visible-infrared person re-identification benchmarks."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one clear line on stderr and exit with code 2."""
    prepare_environment()  # before torch is imported: threads sized to the allowed CPUs
    try:
        rv = cli.main(args=argv, prog_name="vibench", standalone_mode=False)
    except VibenchError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
