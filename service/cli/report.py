"""Follow a job with a progress bar and print what it produced (shared by submit, status and demo)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

from service.cli.client import ApiClient

POLL_S = 1.0


def is_finished(job: dict[str, Any]) -> bool:
    """Done (shards written) or cancelled with nothing left running."""
    return bool(job["status"] == "done" or (job["status"] == "cancelled" and job["tasks"]["running"] == 0))


def _settled(job: dict[str, Any]) -> int:
    tasks = job["tasks"]
    return int(tasks["done"] + tasks["failed"] + tasks["cancelled"])


def follow(
    client: ApiClient, job_id: str, stream: TextIO = sys.stderr, poll_s: float = POLL_S
) -> dict[str, Any]:
    """Poll the job until it is finished, drawing tasks settled / total; returns the final job."""
    job = client.job(job_id)
    with tqdm(total=job["tasks"]["total"], unit="prompt", file=stream, dynamic_ncols=True) as bar:
        while True:
            bar.total = job["tasks"]["total"]
            bar.update(_settled(job) - bar.n)
            rate = job["samples"]["acceptance_rate"]
            bar.set_postfix_str(
                f"{job['status']}, {job['samples']['accepted']} accepted"
                + (f" ({rate:.0%})" if rate is not None else "")
            )
            if is_finished(job):
                return job
            time.sleep(poll_s)
            job = client.job(job_id)


def summary(job: dict[str, Any], shards: list[dict[str, Any]]) -> str:
    """A plain-text account of a job: counts, acceptance per verifier, reasons, failures, shards."""
    samples, tasks = job["samples"], job["tasks"]
    rate = samples["acceptance_rate"]
    reason = f" ({job['status_reason']})" if job.get("status_reason") else ""
    lines = [
        f"job {job['id']}: {job['status']}{reason}",
        f"  prompts: {tasks['done']} done, {tasks['failed']} failed, {tasks['cancelled']} cancelled, "
        f"{tasks['paused']} paused "
        f"of {tasks['total']}",
        f"  samples: {samples['accepted']} accepted, {samples['rejected']} rejected"
        + (f" (acceptance {rate:.1%})" if rate is not None else ""),
        f"  tokens:  {job['tokens']['prompt']} prompt, {job['tokens']['completion']} completion",
    ]
    if job["verifiers"]:
        lines.append("  by verifier:")
        lines += [
            f"    {v['name']:<12} {v['accepted']:>7} accepted {v['rejected']:>7} rejected"
            for v in job["verifiers"]
        ]
    if job["rejection_reasons"]:
        lines.append("  rejections by reason:")
        lines += [f"    {reason:<32} {count:>7}" for reason, count in job["rejection_reasons"].items()]
    if job["failed_tasks"]:
        lines.append("  failed prompts (first ones):")
        lines += [f"    {t['prompt_id']}: {t['last_error']}" for t in job["failed_tasks"]]
    if shards:
        lines.append("  shards:")
        lines += [f"    {s['location']}  ({s['kind']}, {s['num_rows']} rows)" for s in shards]
    return "\n".join(lines)


def workers_table(workers: list[dict[str, Any]]) -> str:
    """The workers by host: live ones with their GPUs, tasks and teachers; the gone ones counted."""
    live = [w for w in workers if w["live"]]
    lines = [f"{len(live)} live workers on {len({w['host'] for w in live})} hosts"]
    for w in live:
        teachers = ", ".join(w["teachers"]) or "no job yet"
        lines.append(
            f"  {w['host']:<24} pid {w['pid']:<8} {w['gpus']} GPUs  {w['in_flight']:>4} tasks  {teachers}"
        )
    gone = len(workers) - len(live)
    if gone:
        lines.append(f"{gone} more seen in the last day and gone (stopped, or no heartbeat since)")
    return "\n".join(lines)
