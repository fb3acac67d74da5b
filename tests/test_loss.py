"""Global Perceived Loss vs the official KLDiscretGlobalPerceivedLoss values."""
import pytest
import torch

from gtpt.engine.loss import GlobalPerceivedLoss, kl_to_target, simcc_kl_loss
from tests.helpers import load_fixture

TOL = 1e-5


@pytest.fixture(scope="module", params=["human", "wholebody"])
def fx(request):
    return load_fixture(request.param)


def test_loss_and_terms_match_reference(fx):
    t = fx["targets"]
    total, terms = GlobalPerceivedLoss()(fx["train"], t["target_x"], t["target_y"], t["target_weight"])
    assert abs(total.item() - fx["loss"].item()) < TOL
    for k in ("student_gt", "teacher_gt", "distill"):
        assert abs(terms[k].item() - fx["loss_terms"][k].item()) < TOL, k
    # the weight may also come as [B, K]
    total2, _ = GlobalPerceivedLoss()(fx["train"], t["target_x"], t["target_y"], t["target_weight"][..., 0])
    assert torch.equal(total, total2)


def _loop_reference(px, py, tx, ty, w):
    """Per-joint loop as the official code writes it (for B >= 1 without squeezing)."""
    k = px.shape[1]
    loss = 0
    for j in range(k):
        loss = loss + (kl_to_target(px[:, j:j + 1], tx[:, j:j + 1])[:, 0] * w[:, j]).mean()
        loss = loss + (kl_to_target(py[:, j:j + 1], ty[:, j:j + 1])[:, 0] * w[:, j]).mean()
    return loss / k


def test_batch_size_one(fx):
    t, tr = fx["targets"], fx["train"]
    one = {k: v[1:2] for k, v in tr.items()}
    total, terms = GlobalPerceivedLoss()(one, t["target_x"][1:2], t["target_y"][1:2], t["target_weight"][1:2])
    assert torch.isfinite(total) and total.ndim == 0
    ref = _loop_reference(one["pred_x"], one["pred_y"], t["target_x"][1:2], t["target_y"][1:2],
                          t["target_weight"][1:2, :, 0])
    assert abs(terms["student_gt"].item() - ref.item()) < 1e-7
    # the batch mean of per-sample losses equals the B=2 loss
    other = {k: v[0:1] for k, v in tr.items()}
    t0, _ = GlobalPerceivedLoss()(other, t["target_x"][0:1], t["target_y"][0:1], t["target_weight"][0:1])
    assert abs((total + t0).item() / 2 - fx["loss"].item()) < TOL


def test_distillation_does_not_reach_the_teacher(fx):
    t = fx["targets"]
    out = {k: v.clone().requires_grad_(True) for k, v in fx["train"].items()}
    _, terms = GlobalPerceivedLoss()(out, t["target_x"], t["target_y"], t["target_weight"])
    terms["distill"].backward()
    assert out["entire_pred_x"].grad is None or not out["entire_pred_x"].grad.any()
    assert out["entire_pred_y"].grad is None or not out["entire_pred_y"].grad.any()
    assert out["pred_x"].grad.abs().sum() > 0 and out["pred_y"].grad.abs().sum() > 0
    # the teacher still learns from its own ground-truth term
    out2 = {k: v.clone().requires_grad_(True) for k, v in fx["train"].items()}
    total, _ = GlobalPerceivedLoss()(out2, t["target_x"], t["target_y"], t["target_weight"])
    total.backward()
    assert out2["entire_pred_x"].grad.abs().sum() > 0


def test_student_only_without_teacher(fx):
    t, tr = fx["targets"], fx["train"]
    out = {"pred_x": tr["pred_x"], "pred_y": tr["pred_y"]}
    total, terms = GlobalPerceivedLoss()(out, t["target_x"], t["target_y"], t["target_weight"])
    assert abs(total.item() - fx["loss_terms"]["student_gt"].item()) < TOL
    assert terms["distill"].item() == 0.0
    plain = simcc_kl_loss(tr["pred_x"], tr["pred_y"], t["target_x"], t["target_y"], t["target_weight"])
    assert torch.equal(plain, total)


def test_zero_weight_joints_do_not_contribute():
    torch.manual_seed(0)
    px, py = torch.randn(2, 3, 8), torch.randn(2, 3, 10)
    tx, ty = torch.rand(2, 3, 8), torch.rand(2, 3, 10)
    w = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    base = simcc_kl_loss(px, py, tx, ty, w)
    px2 = px.clone()
    px2[0, 1] *= 3.0   # (a constant shift would not change the softmax)
    px2[1, 2] = px2[1, 2].flip(-1)
    assert torch.equal(simcc_kl_loss(px2, py, tx, ty, w), base)
    assert not torch.equal(simcc_kl_loss(px2, py, tx, ty, torch.ones(2, 3)), simcc_kl_loss(px, py, tx, ty, torch.ones(2, 3)))
