"""The `featurechanger` command: every subcommand has --help; reporting ones have --json."""

from __future__ import annotations

import os
import signal

import click

from featurechanger import __version__
from featurechanger.config import load_settings
from featurechanger.errors import FeatureChangerError
from orchestrator.commands import db
from orchestrator.commands import data
from orchestrator.commands import jobs
from orchestrator.commands import workers
from orchestrator.commands import edit
from orchestrator.commands import demo
from orchestrator.commands import train
from orchestrator.commands import runs
from orchestrator.commands import vectors
from orchestrator.commands import grid
from orchestrator.commands import interpolate
from orchestrator.commands import classifier
from orchestrator.commands import localiser
from orchestrator.commands import refiner
from orchestrator.commands import evaluate


class FriendlyGroup(click.Group):
    """Shows a FeatureChangerError as a one-line error (exit 1) instead of a traceback."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        try:
            return super().invoke(ctx)
        except FeatureChangerError as error:
            raise click.ClickException(str(error)) from error


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="featurechanger")
@click.option("--home", type=click.Path(file_okay=False), envvar="FEATURECHANGER_HOME",
              help="Where the embedded default keeps its database, data and outputs "
                   "[env FEATURECHANGER_HOME; default ./featurechanger-home].")
@click.option("--database-url", envvar="FEATURECHANGER_DATABASE_URL",
              help="SQLAlchemy URL of the records database [env FEATURECHANGER_DATABASE_URL; "
                   "default SQLite under --home].")
@click.option("--broker-url", envvar="FEATURECHANGER_BROKER_URL",
              help="Redis URL of the job broker; without one, jobs run in-process "
                   "[env FEATURECHANGER_BROKER_URL].")
@click.pass_context
def main(ctx: click.Context, home: str | None, database_url: str | None,
         broker_url: str | None) -> None:
    """Edit face attributes by arithmetic on autoencoder latent vectors, at scale."""
    environ = {**os.environ, "FEATURECHANGER_HOME": home} if home else None
    settings = load_settings(environ)
    ctx.obj = {"settings": settings.with_overrides(database_url=database_url,
                                                    broker_url=broker_url)}


main.add_command(db.db)
main.add_command(data.data)
main.add_command(jobs.jobs)
main.add_command(workers.workers)
main.add_command(edit.edit)
main.add_command(demo.demo)
main.add_command(train.train)
main.add_command(runs.runs)
main.add_command(vectors.vectors)
main.add_command(grid.grid)
main.add_command(interpolate.interpolate)
main.add_command(classifier.classifier)
main.add_command(localiser.localiser)
main.add_command(refiner.refiner)
main.add_command(evaluate.evaluate)


def run() -> None:
    """The console script: `main`, with SIGTERM (`kill`, `docker stop`) handled like Ctrl-C, so
    that an in-process job or training run that is stopped is recorded as interrupted (and
    `jobs retry` / `train --resume` continue it) instead of staying "running" forever."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # raises KeyboardInterrupt
    main()


if __name__ == "__main__":  # `python -m orchestrator.cli`, where the package is not installed
    run()
