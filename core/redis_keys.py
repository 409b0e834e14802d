"""Names of the Redis keys the API and the workers share besides the Celery queues."""

from __future__ import annotations

PREFIX = "rerankq"
WORKER_PATTERN = f"{PREFIX}:worker:*"
JOBS_DONE_CHANNEL = f"{PREFIX}:jobs-done"  # pub/sub: a finished job's id, for the API's waiting requests
RETENTION_SWEEP_LOCK = f"{PREFIX}:retention-sweep"  # held by the one worker running a retention pass


def worker_key(hostname: str) -> str:
    """Heartbeat of one worker process: JSON with its model, written only after warm-up."""
    return f"{PREFIX}:worker:{hostname}"


def cancelled_key(job_id: str) -> str:
    """Set by DELETE /v1/jobs/{id} so running chunks of a cancelled job stop early."""
    return f"{PREFIX}:cancelled:{job_id}"


SCORE_CACHE_PREFIX = f"{PREFIX}:score:"  # + a digest of model, revision, dtype, instruction, query and document


def sweep_lost_lock_key(model_key: str) -> str:
    """Held by the one worker that re-publishes a model's lost messages."""
    return f"{PREFIX}:sweep-lost:{model_key}"


def callback_lease_key(job_id: str) -> str:
    """Held by the one worker delivering a job's webhook."""
    return f"{PREFIX}:callback-lease:{job_id}"


def gpu_lease_key(gpu_id: str) -> str:
    """Held by the worker process that claimed this GPU."""
    return f"{PREFIX}:gpu:{gpu_id}"


def admission_key(model_key: str) -> str:
    """Sorted set of a model's admission reservations: submits admitted and not yet published."""
    return f"{PREFIX}:admission:{model_key}"
