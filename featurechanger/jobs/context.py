"""What planners and task handlers receive and return: the contract between the job system and
the domain code that does the work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from featurechanger.config import Settings


class TaskStopped(Exception):
    """Raised by a handler that saw `should_stop()`: the task is no longer this worker's."""


@dataclass(frozen=True)
class PlannedTask:
    item: int  # shard index, or position in the job's plan
    total: int  # items (images) the task is responsible for


@dataclass(frozen=True)
class Plan:
    """A validated job: the parameters its tasks read, its tasks, and the records it uses."""

    # JSON values only; paths relative to the configured roots (settings.relative), so that a
    # worker resolves them on its own mounts. Planners get the user's paths (relative to the
    # current folder) and store them this way.
    params: dict[str, Any]
    tasks: list[PlannedTask]
    run_id: int | None = None
    vector_set_id: int | None = None
    shard_set_id: int | None = None


@dataclass(frozen=True)
class ItemResult:
    """What became of one input image: its output (relative to the output root), or why not."""

    image_id: str
    output_path: str | None
    error: str | None = None


@dataclass
class TaskOutcome:
    """What a handler did; counts cover the whole task, including items a rerun skipped."""

    done: int
    failed: int = 0
    results: list[ItemResult] = field(default_factory=list)  # written with the task's end
    outputs: dict[str, Any] = field(default_factory=dict)  # merged into the job's outputs
    records: dict[str, int] = field(default_factory=dict)  # run_id / vector_set_id / shard_set_id


@dataclass(frozen=True)
class TaskContext:
    """Everything a handler may use; it re-reads nothing from the job rows itself."""

    settings: Settings
    job_id: int
    kind: str
    params: dict[str, Any]
    records: dict[str, int | None]  # run_id, vector_set_id, shard_set_id of the job
    outputs: dict[str, Any]  # what earlier steps recorded (a final step reads its partials' place)
    task_id: int
    item: int
    total: int
    items_of_job: list[int]  # the items of every work task (a final step reduces over them)
    device: str | None  # None: the first CUDA GPU when there is one, else the CPU
    progress: Callable[[int, int], None]  # (done, failed) so far in this task
    should_stop: Callable[[], bool]  # true once the task is no longer ours (cancelled, requeued)
    # A person watches this process's stderr (an in-process run of a one-task job): the
    # handler may draw the library's own, finer progress bar instead of the job's item count.
    progress_bars: bool = False

    def torch_device(self) -> str:
        if self.device:
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
