"""The common loop of tasks that write one file per input (edit, interpolate): skip inputs an
earlier run finished, process the rest in chunks (progress and cancellation points), turn the
library's outcomes into result rows, and write the task's manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from featurechanger.jobs.context import ItemResult, TaskContext, TaskOutcome, TaskStopped

CHUNK = 256  # inputs per call of the library


def process_items(context: TaskContext, names: Sequence[str],
                  process: Callable[[list[int]], list[Any]], manifest: str,
                  chunk: int = CHUNK) -> TaskOutcome:
    """Run `process(rows)` over the rows of `names` that have no output yet.

    `process` returns outcomes with image_id, output_path (absolute, or None) and error, as
    featurechanger.editing.batch does; `manifest` names the file under OUT/manifests/.
    """
    settings = context.settings
    done_before = _finished_before(context, names)
    todo = [row for row, name in enumerate(names) if name not in done_before]
    results: list[ItemResult] = []
    for start in range(0, len(todo), chunk):
        if context.should_stop():
            raise TaskStopped(f"task {context.task_id} was cancelled or given to another worker")
        results += [ItemResult(outcome.image_id, None if outcome.output_path is None else
                               settings.relative(outcome.output_path, "output"), outcome.error)
                    for outcome in process(todo[start:start + chunk])]
        failed = _failures(results)
        context.progress(len(done_before) + len(results) - failed, failed)
    _write_manifest(context, manifest, done_before, results)
    failed = _failures(results)
    return TaskOutcome(done=len(names) - failed, failed=failed, results=results,
                       outputs={"out": context.params["out"]})  # where jobs show finds them


def _finished_before(context: TaskContext, names: Sequence[str]) -> dict[str, str]:
    """Name -> stored output, for inputs done by an earlier run whose file is still there."""
    from featurechanger.jobs.store import completed_images

    settings = context.settings
    stored = completed_images(settings.database_url, context.job_id, list(names))
    return {name: output for name, output in stored.items()
            if settings.resolve(output, "output").is_file()}


def _failures(results: list[ItemResult]) -> int:
    return sum(result.error is not None for result in results)


def _write_manifest(context: TaskContext, name: str, done_before: dict[str, str],
                    results: list[ItemResult]) -> None:
    """OUT/manifests/NAME: what the job used, and every input of the task with its output or
    its error (written under a temporary name, then renamed)."""
    items = {key: {"output": output, "error": None} for key, output in done_before.items()}
    items.update({r.image_id: {"output": r.output_path, "error": r.error} for r in results})
    manifest = {"job_id": context.job_id, "kind": context.kind, "item": context.item,
                "params": context.params, "items": dict(sorted(items.items()))}
    folder = context.settings.resolve(context.params["out"], "output") / "manifests"
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.tmp-{os.getpid()}"
    temporary.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(temporary, folder / name)
