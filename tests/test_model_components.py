"""Each model component on its own: would fail if that component were wrong."""
from __future__ import annotations

import warnings

import pytest
import torch

from gtpt import build_model
from gtpt.config import PRESETS, get_model_config
from gtpt.models.attention import Attention, GroupAttention
from gtpt.models.layout import build_layout
from gtpt.models.position import sine_position_table
from gtpt.models.pruning import softmax_pool, top_tokens
from gtpt.models.stem import concat_shuffle

from .conftest import load_official_fixture
from tests.helpers import needs_flex


def test_sine_table_equals_reference_table():
    fx = load_official_fixture("gtpt-t-body")
    ref = fx["state_dict"]["features.pos_embedding"]
    assert torch.allclose(sine_position_table(16, 16, 128), ref, atol=1e-6)


def test_channel_shuffle_interleaves_halves():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert concat_shuffle(x[:, :4], x[:, 4:]).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


@pytest.mark.parametrize("form", ["conv", "linear"])
def test_patch_embedding_is_a_linear_over_dy_dx_c_patch_vectors(form):
    from gtpt.models.patch_embed import PatchEmbed
    torch.manual_seed(0)
    embed = PatchEmbed(5, (4, 3), 7, form=form).double()
    f = torch.randn(2, 5, 8, 9, dtype=torch.float64)
    # the official patch vector: channel fastest, then dx, then dy; patches row-major
    vectors = torch.stack([f[:, :, 4 * i:4 * i + 4, 3 * j:3 * j + 3].permute(0, 2, 3, 1).reshape(2, -1)
                           for i in range(2) for j in range(3)], dim=1)
    expected = vectors @ embed.weight.T + embed.bias
    with torch.no_grad():
        got = embed(f)
    assert got.shape == (2, 6, 7)
    assert torch.allclose(got, expected, atol=1e-12)
    with pytest.raises(ValueError, match="form"):
        embed.form = "unfold"


@pytest.mark.parametrize("size,channels", [("t", 128), ("s", 256), ("b", 256)])
def test_stems_give_stride4_maps(size, channels):
    model = build_model(f"gtpt-{size}-body").eval()
    with torch.no_grad():
        out = model.stem(torch.randn(1, 3, 256, 192))
    assert out.shape == (1, channels, 64, 48)


def test_attention_scale_is_dim_not_head_dim():
    torch.manual_seed(0)
    attn = Attention(64, 8, fused=True)
    x = torch.randn(2, 10, 64)
    out, logits = attn(x, score_rows=2)
    q, k, v = attn.qkv(x).chunk(3, -1)
    q, k, v = (t.view(2, 10, 8, 8).transpose(1, 2) for t in (q, k, v))
    a = (q @ k.transpose(-1, -2)) * 64 ** -0.5
    ref = attn.proj((a.softmax(-1) @ v).transpose(1, 2).reshape(2, 10, 64))
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(logits, a[:, :, :2, 2:], atol=1e-5)


def test_group_attention_equals_masked_reference():
    """Dropping the placeholder key must equal the reference's masking of it (key 0 masked for
    every query; the placeholder query masked everywhere, whose output nobody reads)."""
    torch.manual_seed(0)
    b, g, t, c, h, s = 2, 3, 11, 32, 4, 6
    ga = GroupAttention(c, h, num_sparse=s, fused=True)
    x = torch.randn(b, g, t, c)
    out, logits = ga(x, score_rows=s)
    q, k, v = (z.view(b, g, t, h, c // h).permute(0, 3, 1, 2, 4) for z in ga.qkv(x).chunk(3, -1))
    k_sp = k[:, :, :, :s].flatten(2, 3).unsqueeze(2).expand(-1, -1, g, -1, -1)
    v_sp = v[:, :, :, :s].flatten(2, 3).unsqueeze(2).expand(-1, -1, g, -1, -1)
    keys, vals = torch.cat([k_sp, k[:, :, :, s:]], 3), torch.cat([v_sp, v[:, :, :, s:]], 3)
    dots = torch.einsum("bhgid,bhgjd->bhgij", q, keys) * c ** -0.5
    mask = torch.zeros_like(dots, dtype=torch.bool)
    mask[..., 0] = True
    mask[:, :, 0, 0, :] = True
    dots = dots.masked_fill(mask, -torch.finfo(dots.dtype).max)
    ref = ga.proj(torch.einsum("bhgij,bhgjd->bhgid", dots.softmax(-1), vals).permute(0, 2, 3, 1, 4).reshape(b, g, t, c))
    used = torch.ones(g, t, dtype=torch.bool)
    used[0, 0] = False  # the placeholder's own output is never read
    assert torch.allclose(out[:, used], ref[:, used], atol=1e-5)
    ref_logits = dots.permute(0, 2, 1, 3, 4)[..., :s, 3 * s:]
    rows = used[:, :s]  # the placeholder row is masked in the reference and ignored when pooling
    assert torch.allclose(logits.transpose(1, 2)[:, :, rows], ref_logits.transpose(1, 2)[:, :, rows], atol=1e-5)
    ga.fused = False
    out_plain, _ = ga(x)
    assert torch.allclose(out_plain, out, atol=1e-5)


def test_softmax_pool_and_top_tokens():
    a = torch.tensor([[1.0, 3.0], [2.0, -1.0]])  # rows x tokens
    w = a.softmax(0)
    assert torch.allclose(softmax_pool(a, 0), (a * w).sum(0))
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7]])
    assert top_tokens(scores, 2).tolist() == [[1, 3]]
    assert top_tokens(scores, 3, in_order=True).tolist() == [[1, 2, 3]]


def test_layout_output_order_wholebody():
    layout = build_layout(133)
    assert layout.out_index.numel() == 133 and len(set(layout.out_index.tolist())) == 133
    width = 6 + 68
    # body first (without the placeholder), then feet from group 2, face from 0, hands from 1
    assert layout.out_index[:17].tolist() == [g * width + s for g in range(3) for s in range(6)][1:]
    assert layout.out_index[17].item() == 2 * width + 6
    assert layout.out_index[23].item() == 0 * width + 6
    assert layout.out_index[91].item() == 1 * width + 6
    assert layout.part_of_dense.tolist() == [0] * 68 + [1] * 21 + [2] * 21 + [3] * 3 + [4] * 3


@pytest.mark.parametrize("rates,msg", [((1, 0.7, 0.9, 0.1), "increase"), ((1, 0.7, 0.3), "4 values"),
                                       ((1, 0.7, 0.3, 0.0), "4 values")])
def test_bad_keep_rates_rejected(rates, msg):
    model = build_model("gtpt-t-body")
    with pytest.raises(ValueError, match=msg):
        model.set_keep_rates(rates)


def test_wholebody_keep_rates_must_fit_dense_tokens():
    with pytest.raises(ValueError, match="dense"):
        build_model("gtpt-t-wholebody").set_keep_rates((1, 0.7, 0.2, 0.2))


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_runs_fused_equals_plain_and_batch_independent(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    _randomise_norms(model)
    x = torch.randn(2, 3, 256, 192)
    with torch.no_grad():
        px, py = model(x)
        p1x, _ = model(x[1:])
        for blk in list(model.blocks) + list(model.group_blocks):
            blk.attn.fused = False
        qx, qy = model(x)
    k = get_model_config(name).num_joints
    assert px.shape == (2, k, 384) and py.shape == (2, k, 512)
    assert torch.allclose(px, qx, atol=1e-4) and torch.allclose(py, qy, atol=1e-4)
    assert torch.allclose(p1x[0], px[1], atol=1e-4)  # a sample's pruning does not depend on its batch


@pytest.mark.parametrize("rates", [(1.0, 1.0, 1.0, 1.0), (0.9, 0.6, 0.4, 0.3), (1.0, 0.5, 0.5, 0.5)])
def test_custom_keep_rates_token_counts(rates):
    model = build_model("gtpt-t-wholebody").eval()
    trace = {}
    with torch.no_grad():
        model(torch.randn(1, 3, 256, 192), keep_rates=rates, trace=trace)
    entry = int(256 * rates[2])
    assert [t.shape[1] for t in trace["group_entry"]] == [entry - 68, entry - 42, entry - 6]


def test_train_mode_teacher_is_unpruned_student():
    torch.manual_seed(0)
    model = build_model("gtpt-t-body")
    _randomise_norms(model)
    model.train()
    x = torch.randn(2, 3, 256, 192)
    out = model(x)
    tokens = model.forward_features(x)  # BN in train mode: same batch statistics
    tx, ty = model.forward_head(model.forward_tokens(tokens, (1, 1, 1, 1)))
    sx, _ = model.forward_head(model.forward_tokens(tokens))
    assert torch.allclose(out["entire_pred_x"], tx, atol=1e-5) and torch.allclose(out["pred_x"], sx, atol=1e-5)
    out["pred_x"].sum().backward()
    assert model.keypoint_tokens.grad is not None and model.stem.conv1[0].weight.grad is not None


def test_bf16_autocast_close_to_fp32():
    fx = load_official_fixture("gtpt-t-body")
    from gtpt import load_official_checkpoint
    model = load_official_checkpoint(fx["state_dict"], "gtpt-t-body")
    with torch.no_grad():
        ref, _ = model(fx["x"], keep_rates=(1, 1, 1, 1))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, _ = model(fx["x"], keep_rates=(1, 1, 1, 1))
    # bf16 keeps ~3 significant digits; compare relative to the logits' spread
    assert (low.float() - ref).abs().max() < 0.05 * ref.abs().max()


def _randomise_norms(model):
    """Random weights give nearly uniform attention; perturb norms so paths really differ."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
            m.weight.data = torch.rand(m.weight.shape, generator=g) + 0.5
            m.bias.data = torch.randn(m.bias.shape, generator=g) * 0.1
        if isinstance(m, torch.nn.Conv2d):
            m.weight.data = torch.randn(m.weight.shape, generator=g) * (2.0 / m.weight[0].numel()) ** 0.5
    for p in model.token_parameters():
        p.data = torch.randn(p.shape, generator=g)



@pytest.mark.parametrize("name", ["gtpt-t-body", "gtpt-b-wholebody"])
def test_batchnorm_folding_keeps_outputs(name):
    from gtpt.models.fusion import fuse_for_inference
    torch.manual_seed(0)
    model = build_model(name).eval()
    _randomise_norms(model)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        ref = model(x)
        fused = fuse_for_inference(model)(x)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(ref, fused))
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == (2 if "-b-" in name else 0)


def test_depthwise_bias_moves_into_the_next_1x1_conv_only():
    """dw -> BN -> 1x1: the bias moves (same outputs in float64); dw -> ReLU -> 1x1 and dw -> 3x3 keep it."""
    from gtpt.models.fusion import _fold_sequential, fuse_for_inference
    torch.manual_seed(0)
    model = build_model("gtpt-t-body").eval()
    _randomise_norms(model)
    model.double()
    for m in model.stem.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.bias.data.normal_(0, 0.5)   # large enough that a lost bias shows
    x = torch.randn(1, 3, 256, 192, dtype=torch.float64)
    with torch.no_grad():
        ref = model(x)
        fuse_for_inference(model)
        out = model(x)
    assert all(torch.allclose(a, b, atol=1e-9) for a, b in zip(ref, out))
    depthwise = [m for m in model.stem.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 2 + 3 and all(m.bias is None for m in depthwise)   # stride-2 unit: 2, stride-1: 1

    def biased(*layers):
        seq = torch.nn.Sequential(*layers).double().eval()
        for m in seq:
            if isinstance(m, torch.nn.Conv2d):
                m.bias.data.normal_(0, 0.5)
        x = torch.randn(1, 4, 6, 5, dtype=torch.float64)
        with torch.no_grad():
            ref = seq(x)
            _fold_sequential(seq)
            return seq, torch.allclose(ref, seq(x), atol=1e-12)

    dw = lambda: torch.nn.Conv2d(4, 4, 3, 1, 1, groups=4)   # noqa: E731
    for layers in ((dw(), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 1)), (dw(), torch.nn.Conv2d(4, 4, 3, 1, 1))):
        seq, same = biased(*layers)
        assert same and seq[0].bias is not None


@pytest.mark.parametrize("channels_last", [False, True])
def test_concat_shuffle_equals_cat_then_shuffle(channels_last):
    a, b = torch.randn(2, 6, 5, 4), torch.randn(2, 6, 5, 4)
    if channels_last:
        a, b = a.contiguous(memory_format=torch.channels_last), b.contiguous(memory_format=torch.channels_last)
    out = concat_shuffle(a, b)
    cat = torch.cat([a, b], 1)  # the reference's shuffle: view as 2 groups, swap, flatten
    shuffled = cat.view(2, 2, 6, 5, 4).transpose(1, 2).reshape(2, 12, 5, 4)
    assert torch.equal(out, shuffled)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.mark.parametrize("name", ["gtpt-t-body", "gtpt-b-body"])
def test_padded_input_channels_keep_outputs(name):
    from gtpt.models.fusion import deployment_copy
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(2, 3, 256, 192)
    wide = deployment_copy(model, input_channels=8)
    assert wide.stem.conv1[0][1].in_channels == 8 and model.stem.conv1[0].in_channels == 3
    with torch.no_grad():
        ref, out = deployment_copy(model)(x), wide(x)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(ref, out))


@pytest.mark.parametrize("size", [(256, 192), (7, 5), (8, 9)])
def test_space_to_depth_conv_equals_strided_conv(size):
    from gtpt.models.fusion import SpaceToDepthConv
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 64, 3, 2, 1).double()
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    s2d = SpaceToDepthConv(conv)
    assert s2d.conv.in_channels == 16 and s2d.conv.kernel_size == (2, 2)
    with torch.no_grad():
        ref, out = conv(x), s2d(x)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def test_space_to_depth_rejects_other_convolutions():
    from gtpt.models.fusion import SpaceToDepthConv
    with pytest.raises(ValueError, match="3x3 stride-2"):
        SpaceToDepthConv(torch.nn.Conv2d(3, 8, 3, 1, 1))


@pytest.mark.parametrize("name", ["gtpt-t-body", "gtpt-b-body"])
def test_space_to_depth_deployment_copy_keeps_stem_outputs(name):
    from gtpt.models.fusion import deployment_copy
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(2, 3, 256, 192)
    with torch.no_grad():
        ref = deployment_copy(model).stem.conv1(x)
        s2d = deployment_copy(model, space_to_depth=True, channels_last=True)
        out = s2d.stem.conv1(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    with pytest.raises(ValueError, match="one form"):
        deployment_copy(model, input_channels=8, space_to_depth=True)


@pytest.mark.parametrize("kernel", [pytest.param("flex", marks=needs_flex), "sdpa-split"])
def test_attention_kernels_give_the_same_outputs(kernel):
    from gtpt.models.attention import set_attention_kernel
    torch.manual_seed(0)
    model = build_model("gtpt-t-body").eval()
    _randomise_norms(model)
    x = torch.randn(2, 3, 256, 192)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # eager flex_attention warns that it is unfused
        ref = model(x)
        out = set_attention_kernel(model, kernel)(x)
    assert all(a.kernel == kernel for a in model.modules() if isinstance(a, Attention))
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(ref, out))
    with pytest.raises(ValueError, match="unknown attention kernel"):
        set_attention_kernel(model, "xformers")


@needs_flex
def test_attention_kernel_by_layer_set():
    from gtpt.models.attention import GroupAttention, set_attention_kernel
    model = build_model("gtpt-t-body")
    kinds = lambda: {(type(m).__name__, m.kernel) for m in model.modules() if isinstance(m, Attention)}  # noqa: E731
    set_attention_kernel(model, "flex", "group")
    assert kinds() == {("Attention", "sdpa"), ("GroupAttention", "flex")}
    set_attention_kernel(model, "plain", "self")
    assert kinds() == {("Attention", "plain"), ("GroupAttention", "flex")}
    set_attention_kernel(model, "sdpa")
    assert kinds() == {("Attention", "sdpa"), ("GroupAttention", "sdpa")}
    assert any(isinstance(m, GroupAttention) for m in model.modules())
    with pytest.raises(ValueError, match="layer set"):
        set_attention_kernel(model, "flex", "coarse")


def test_split_attention_splits_257_rows_and_matches(monkeypatch):
    from gtpt.models.attention import _attend
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 257, 16), torch.randn(2, 3, 257, 16), torch.randn(2, 3, 257, 16)
    calls, sdpa = [], torch.nn.functional.scaled_dot_product_attention

    def recording(q, *args, **kwargs):   # the real kernel, noting each call's query length
        calls.append(q.shape[-2])
        return sdpa(q, *args, **kwargs)
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording)
    out = _attend(q, k, v, 0.1, "sdpa-split")
    _attend(q[..., :200, :], k, v, 0.1, "sdpa-split")   # 200 = 128 + 72: one call
    assert calls == [1, 256, 200]
    torch.testing.assert_close(out, sdpa(q, k, v, scale=0.1))


@needs_flex
def test_flex_attention_compiles_for_group_attention():
    """Under torch.compile FlexAttention becomes a generated kernel; the group layout (a strided
    query view, keys longer than queries) must compile and match the library kernel."""
    from gtpt.models.attention import set_attention_kernel
    torch.manual_seed(0)
    ga = GroupAttention(32, 2, num_sparse=6).eval()
    x = torch.randn(2, 3, 11, 32)
    with torch.no_grad():
        ref, _ = ga(x)
        out, _ = torch.compile(set_attention_kernel(ga, "flex"), dynamic=False)(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_flex_attention_missing_says_which_torch(monkeypatch):
    """torch < 2.5 has no FlexAttention: a clear error, not a NameError from the error path."""
    import sys
    from gtpt.models.attention import set_attention_kernel
    monkeypatch.setitem(sys.modules, "torch.nn.attention.flex_attention", None)   # as if absent
    with pytest.raises(RuntimeError, match=r"FlexAttention needs torch >= 2.5 \(this is "):
        set_attention_kernel(build_model("gtpt-t-body"), "flex")
