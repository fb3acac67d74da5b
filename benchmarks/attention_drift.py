"""How far an attention kernel moves GTPT's bf16 outputs from fp32 eager, and in which layers.

For each kernel and layer set it prints max and mean |Δ| of the SimCC logits, and how often the
decoded position (the argmax bin, x and y) matches fp32's. attention_precision.py measures the
kernels alone on random tensors; this runs them inside the compiled model, where inductor fuses
their inputs and outputs, so a drift here that the kernel alone does not show points at that
integration (strides, fused prologues) rather than at the kernel's rounding.

    PYTHONPATH=src python benchmarks/attention_drift.py --device cuda --kernels sdpa flex --layers all self group

--layers: all attention layers, only the self-attention ones (coarse encoder and the blocks
before grouping) or only Multi-Head Group Attention. --contiguous-kv copies keys and values
into contiguous tensors before the kernel (they are strided views of the qkv projection).
Same seed, weights and input in every row; the reference is model_speed.py's fp32 eager run (TF32
off); the rows run a deployment copy (BatchNorm folded, channels-last) with bf16 weights, under
torch.compile unless --eager.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))   # model_speed, beside this file

import gtpt.models.attention as attention  # noqa: E402
from gtpt import build_model  # noqa: E402
from gtpt.models.fusion import deployment_copy  # noqa: E402
from model_speed import abs_diff, fp32_reference, tensors  # noqa: E402


def drift(out, ref: list[torch.Tensor]) -> tuple[float, float, float]:
    """(max |Δ|, mean |Δ|, share of argmax positions equal to the reference's) over the logits."""
    same = torch.cat([(g.float().argmax(-1) == r.argmax(-1)).flatten() for g, r in zip(tensors(out), ref)])
    return *abs_diff(out, ref), same.float().mean().item()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="gtpt-t-body")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--kernels", nargs="+", default=["sdpa", "flex"], choices=attention.KERNELS)
    p.add_argument("--layers", nargs="+", default=["all"], choices=attention.LAYER_SETS)
    p.add_argument("--contiguous-kv", action="store_true")
    p.add_argument("--eager", action="store_true", help="no torch.compile (flex then runs unfused)")
    p.add_argument("--space-to-depth", action="store_true")
    p.add_argument("--out", help="append the rows to this file")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model(args.model).eval()
    x = torch.randn(args.batch, 3, *model.cfg.image_size).to(device).contiguous(memory_format=torch.channels_last)
    ref = fp32_reference(model, x, device)
    attend = attention._attend
    if args.contiguous_kv:   # undone below: the module is shared with whoever imported it
        attention._attend = lambda q, k, v, scale, kernel: attend(q, k.contiguous(), v.contiguous(), scale, kernel)
    import torch._inductor.config as inductor_config   # TORCHINDUCTOR_PROLOGUE_FUSION=0 turns it off
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    lines = [f"machine: {name}, torch {torch.__version__}, {args.model}, batch {args.batch}, "
             f"{'eager' if args.eager else 'compiled'} bf16 weights{', contiguous k/v' if args.contiguous_kv else ''}"
             f"{'' if args.eager or inductor_config.prologue_fusion else ', no prologue fusion'}",
             f"{'kernel':<12}{'layers':<8}{'max|Δ| vs fp32':>16}{'mean|Δ|':>10}{'same argmax':>13}"]
    print("\n".join(lines), flush=True)
    try:
        for kernel in args.kernels:
            for layers in args.layers:
                if kernel == "sdpa" and layers != "all":   # the other layers run sdpa already
                    continue
                m = deployment_copy(model, device, space_to_depth=args.space_to_depth)
                attention.set_attention_kernel(m, kernel, layers).to(torch.bfloat16)
                fn = m if args.eager else torch.compile(m, dynamic=False)
                with torch.inference_mode():
                    row = "{:>16.3g}{:>10.2g}{:>12.2%}".format(*drift(fn(x.bfloat16()), ref))
                lines.append(f"{kernel:<12}{layers:<8}{row}")
                print(lines[-1], flush=True)
                torch._dynamo.reset()
    finally:
        attention._attend = attend
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
