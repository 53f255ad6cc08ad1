"""The distillation loss docs/export.md gives, as the tests run it on exported soft labels."""

from __future__ import annotations

from typing import Any


def kd_loss(row: dict[str, Any], head: Any, embed: Any, temperature: float) -> Any:
    """Forward KL from the teacher's top-k (renormalised at the temperature, the rest of the vocabulary
    as one bucket) to the student, over the completion tokens; scaled by T^2 as in Hinton et al."""
    import torch

    ids = torch.tensor(row["input_ids"])
    mask = torch.tensor(row["loss_mask"], dtype=torch.bool)
    k = row["top_k"]
    top_ids = torch.tensor(row["teacher_top_ids"]).view(-1, k)
    top_lp = torch.tensor(row["teacher_top_logprobs"], dtype=torch.float32).view(-1, k)
    prompt_len = int((~mask).sum())
    logits = head(embed(ids))[prompt_len - 1 : len(ids) - 1]  # the positions that predict the completion
    valid = top_ids >= 0
    teacher_top = torch.where(valid, top_lp.exp(), torch.zeros_like(top_lp))
    teacher_rest = (1 - teacher_top.sum(-1, keepdim=True)).clamp(min=1e-8)
    teacher = torch.cat([teacher_top, teacher_rest], -1).clamp(min=1e-8) ** (1 / temperature)
    teacher = teacher / teacher.sum(-1, keepdim=True)
    student_all = torch.softmax(logits / temperature, -1)
    student_top = student_all.gather(1, top_ids.clamp(min=0)) * valid
    student_rest = (1 - student_top.sum(-1, keepdim=True)).clamp(min=1e-8)
    student = torch.cat([student_top, student_rest], -1).clamp(min=1e-8)
    kl = (teacher * (teacher.log() - student.log())).sum(-1)
    return kl.mean() * temperature**2
