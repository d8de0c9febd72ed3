"""`ecomlab`: the command line, one module a command group, each command a thin wrapper around the
runner. The commands are registered here, explicitly, in the order `ecomlab --help` lists them.

Heavy libraries (torch, transformers, lightning) are imported inside the commands so that
`ecomlab --help` answers at once.
"""

from __future__ import annotations

import typer
from rich.console import Console

from experiments.cli import analysis, data, run, ship, sweep
from experiments.core.errors import EcomlabError

app = typer.Typer(
    help="Fine-tune, sweep and reproduce e-commerce language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
study_app = typer.Typer(help="Inspect Optuna studies: list, show, best.", no_args_is_help=True)

for command in (
    run.run,
    run.reproduce,
    run.runs,
    analysis.compare,
    analysis.report,
    analysis.anomaly,
    data.datasets,
    data.fetch,
    data.sync,
    sweep.sweep,
):
    app.command()(command)
app.add_typer(study_app, name="study")
study_app.command("list")(sweep.study_list)
study_app.command("show")(sweep.study_show)
study_app.command("best")(sweep.study_best)
study_app.command("recommend")(sweep.study_recommend)
for command in (ship.export, ship.serve, analysis.dashboard, data.backbones):
    app.command()(command)
app.command("config")(data.config_help)


def main() -> None:
    from experiments.core.process import exit_now

    code: object = 0
    try:
        app()
    except SystemExit as exc:  # how Typer ends every command
        code = exc.code
    except EcomlabError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        code = getattr(exc, "exit_code", 2)  # 3: a sweep that ended short of its budget
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/]")
        code = 130
    exit_now(code)
