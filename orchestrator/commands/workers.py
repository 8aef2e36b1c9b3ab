"""`featurechanger workers`: who is online, which queues they consume, what they run now."""

from __future__ import annotations

from typing import Any

import click

from orchestrator.output import emit, json_option, settings_from_context


@click.command()
@json_option
@click.pass_context
def workers(ctx: click.Context, as_json: bool) -> None:
    """The online workers: their queues, pool size, and the job tasks they are running.

    Workers record themselves in the database when they start and beat while they live; one
    silent for six beats is shown no more.
    """
    from featurechanger.db.migrate import ensure_schema
    from featurechanger.jobs.workers import online_workers

    settings = settings_from_context(ctx)
    ensure_schema(settings.database_url)
    payload = {"broker": bool(settings.broker_url),
               "workers": online_workers(settings.database_url)}
    emit(payload, as_json, _describe)


def _describe(payload: dict[str, Any]) -> str:
    if not payload["workers"]:
        hint = ("Start one with `celery -A worker.celery_app worker -Q gpu,cpu`."
                if payload["broker"] else "No broker is configured (FEATURECHANGER_BROKER_URL), "
                "so jobs run inside the command that submits them.")
        return f"No worker is online. {hint}"
    lines = []
    for worker in payload["workers"]:
        lines.append(f"{worker['hostname']}: queues {', '.join(worker['queues'])}, "
                     f"{worker['concurrency']} processes, seen {worker['seen_s_ago']} s ago, "
                     f"{len(worker['running'])} tasks running")
        lines += [f"  job {task['job_id']} {task['step']} item {task['item']}: "
                  f"{task['done']}/{task['total']}" for task in worker["running"]]
    return "\n".join(lines)
