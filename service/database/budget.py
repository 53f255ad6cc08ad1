"""An adaptive budget's samples: set aside when the job starts, reserved by prompts round by round.

Each prompt's first round is counted out when the job starts (its prompts times ``first_round``);
the rest is the job's pool (``jobs.extra_samples_left``). A prompt that wants another round reserves
it from the pool in one fenced transaction, and its reservation is kept on its task, so that a retried
prompt spends what it reserved before rather than a second share. What a prompt reserved and did not
draw goes back to the pool when it finishes (``finishing.py``). The job never draws more samples than
its budget: first rounds plus what the pool gave out.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, func, select, update

from service.database.db import writing
from service.database.models import Job, Task
from service.database.queue import IS_RUNNING, ClaimedTask, lease_lost
from service.errors import InvalidJob


def set_aside(conn: Connection, job_id: str, spec: dict[str, object], prompts: int) -> None:
    """Open the job's pool as it starts: the budget less every prompt's first round.

    Raises:
        InvalidJob: the budget does not cover one first round per prompt.
    """
    budget = spec.get("adaptive_budget")
    if not isinstance(budget, dict):
        return
    total, first = int(budget["total_samples"]), int(budget["first_round"])
    if total < prompts * first:
        raise InvalidJob(
            f"adaptive_budget.total_samples: {total} samples do not give each of the {prompts} prompts its "
            f"first round of {first}; give at least {prompts * first}",
            field="adaptive_budget.total_samples",
        )
    conn.execute(update(Job).where(Job.id == job_id).values(extra_samples_left=total - prompts * first))


def reserve(engine: Engine, task: ClaimedTask, owner: str, wanted: int, drawn: int) -> int:
    """How many of ``wanted`` further samples this attempt of the task may draw: first from what the
    task reserved on earlier attempts and this attempt has not drawn yet (``drawn`` beyond its first
    round so far), then from the job's pool; 0 once the budget is spent.

    Raises:
        LeaseLost: the lease is no longer ours; nothing was reserved.
    """
    with writing(engine) as conn:
        held = conn.execute(
            select(func.coalesce(Task.extra_reserved, 0)).where(
                Task.id == task.id, Task.owner == owner, Task.attempt == task.attempt, IS_RUNNING
            )
        ).scalar_one_or_none()
        if held is None:
            raise lease_lost(task, owner)
        own = min(wanted, max(0, held - drawn))
        if own == wanted:
            return own
        left = conn.execute(
            select(Job.extra_samples_left).where(Job.id == task.job_id).with_for_update()
        ).scalar_one()
        taken = min(wanted - own, left or 0)
        if taken:
            conn.execute(
                update(Job)
                .where(Job.id == task.job_id)
                .values(extra_samples_left=Job.extra_samples_left - taken)
            )
            conn.execute(update(Task).where(Task.id == task.id).values(extra_reserved=held + taken))
        return own + taken
