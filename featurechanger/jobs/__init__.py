"""The job system's domain side: job and task rows, planning work into tasks, running a task
(claim, heartbeat, finish), requeueing tasks whose worker went silent, job states and counts,
results per input image, the table of job kinds, and the in-process runner.

It imports neither Celery nor Click: worker/ wraps `run_task` in thin Celery tasks, and
orchestrator/ submits jobs, dispatching their tasks to a broker or to `run_in_process`.
"""

from featurechanger.jobs.execute import TaskReport, run_task
from featurechanger.jobs.kinds import KINDS, QUEUES, JobKind, Step, job_kind
from featurechanger.jobs.runner import run_in_process
from featurechanger.jobs.store import (Liveness, TaskRef, cancel_job, failures, job_summary,
                                       list_jobs, queued_tasks, requeue_stale, retry_job,
                                       task_rows)
from featurechanger.jobs.submit import new_job

__all__ = ["KINDS", "QUEUES", "JobKind", "Liveness", "Step", "TaskRef", "TaskReport",
           "cancel_job", "failures", "job_kind", "job_summary", "list_jobs", "new_job",
           "queued_tasks", "requeue_stale", "retry_job", "run_in_process", "run_task",
           "task_rows"]
