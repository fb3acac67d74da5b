"""SA-SimCC KL losses, including GTPT's Global Perceived Loss (pruned student + unpruned teacher).

Per joint and axis the reference computes mean-over-bins KL, multiplies by the joint weight,
averages over the batch, sums over joints and axes and divides by K. Here that is one
vectorised expression: sum(kl * w) / (B * K).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _weight(target_weight: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[B, K] or [B, K, 1] -> [B, K] in the logits' dtype."""
    w = target_weight.reshape(like.shape[0], like.shape[1]).to(like.dtype)
    return w


def kl_to_target(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over bins of t * (log t - log_softmax(logits)), 0 where t = 0. [B, K, W] -> [B, K]."""
    logp = F.log_softmax(logits, dim=-1)
    return (torch.xlogy(target, target) - target * logp).mean(dim=-1)


def kl_distill(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """KL(softmax(teacher) || softmax(student)) per row, mean over bins; no gradient to teacher.

    [B, K, W] -> [B, K]. Temperature 1.
    """
    log_t = F.log_softmax(teacher.detach(), dim=-1)
    log_s = F.log_softmax(student, dim=-1)
    return (log_t.exp() * (log_t - log_s)).mean(dim=-1)


def _reduce(per_joint: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted [B, K] -> batch mean, joint mean (the reference's sum over joints / K)."""
    b, k = per_joint.shape
    return (per_joint * w).sum() / (b * k)


def simcc_kl_loss(pred_x, pred_y, target_x, target_y, target_weight) -> torch.Tensor:
    """Plain SA-SimCC KL loss of one output pair [B, K, Wx], [B, K, Wy] (no teacher)."""
    w = _weight(target_weight, pred_x)
    return _reduce(kl_to_target(pred_x, target_x) + kl_to_target(pred_y, target_y), w)


class GlobalPerceivedLoss(nn.Module):
    """GTPT loss: KL(target||student) + KL(target||teacher) + KL(teacher.detach()||student).

    outputs: dict with pred_x/pred_y (pruned student, [B, K, Wx|Wy]) and, in training,
    entire_pred_x/entire_pred_y (unpruned teacher). Without the entire_* keys only the
    student term is used. Returns (total, {"student_gt", "teacher_gt", "distill"}).
    """

    def forward(self, outputs: dict, target_x, target_y, target_weight):
        px, py = outputs["pred_x"], outputs["pred_y"]
        student = simcc_kl_loss(px, py, target_x, target_y, target_weight)
        if "entire_pred_x" not in outputs:
            zero = student.new_zeros(())
            return student, {"student_gt": student, "teacher_gt": zero, "distill": zero}
        tx, ty = outputs["entire_pred_x"], outputs["entire_pred_y"]
        teacher = simcc_kl_loss(tx, ty, target_x, target_y, target_weight)
        w = _weight(target_weight, px)
        distill = _reduce(kl_distill(px, tx) + kl_distill(py, ty), w)
        total = student + teacher + distill
        return total, {"student_gt": student, "teacher_gt": teacher, "distill": distill}


__all__ = ["GlobalPerceivedLoss", "simcc_kl_loss", "kl_to_target", "kl_distill"]
