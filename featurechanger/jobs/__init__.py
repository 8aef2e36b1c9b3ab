"""The job system's domain side. It imports neither Celery nor Click: worker/ wraps `run_task`
in thin Celery tasks, and orchestrator/ submits jobs and dispatches their tasks to a broker or
to the in-process runner.

Modules: states (job and task states, how a job's follows from its tasks'), kinds (the table of
job kinds: planner, handlers, queue, time limits), context (what planners and handlers get and
return), submit (plan + record a job), store (job and task rows: claim, heartbeat, finish,
stale requeue, cancel, retry, reading back), heartbeat, execute (run one task), runner (the
in-process runner), workers (who is online), selection, loading and per_image (shared by the
kinds), and one module per kind: shard, train, vectors, edit, interpolate.

Submodules are imported where used, so that importing one (e.g. states, from the CLI) stays
cheap.
"""
