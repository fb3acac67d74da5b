#!/usr/bin/env bash
# GPU speed sweep for GTPT-T body at batch 1024, bf16: which variant closes the gap to the 5x goal
# (>= 41,630 img/s, <= 24.6 ms per batch). Best so far (H200, 2026-11-26, night): graph-bf16w with the
# space-to-depth first convolution, 37,826 img/s = 27.07 ms (x4.54); the same run's plain graph-bf16w
# gave 28.69 ms. That session's sweep (benchmarks/results/h200_2026-11-26_night.md) ruled out the
# NCHW layout and the other SDPA backends (flash, mem_efficient, math); 8 input channels ran out of memory
# there (12 processes on one GPU), so it runs again.
# Candidates left: FlexAttention (a generated Triton kernel in place of cuDNN's SDPA, 25% of the time at
# head dim 16), the coarse blocks' 257 query rows as 1 + 256 (no nearly empty third 128-row tile),
# 1x1 convolutions as matrix products (cuBLAS instead of cuDNN), and max-autotune (GEMM templates and
# coordinate-descent tuning of the generated kernels; convolutions stay with cuDNN) on the fastest.
#
#   from the repo root, on the GPU machine:  OUT=<folder> bash benchmarks/gpu_sweep.sh   (<= BUDGET s, ≈ 9 min)
#   CPU dry run (typos, timeouts):  DEVICE=cpu B=2 BUDGET=200 T_PAR=150 OUT=/tmp/o bash benchmarks/gpu_sweep.sh
#
# Each variant is its own process; all compile at once on the CPU cores, wait until every one has
# compiled (no timing may overlap another's compiling call: that cost the earlier sweep 2-3 ms per row;
# a straggler is waited for at most 120 s),
# then take turns on the GPU (model_speed.py --gpu-lock, --gpu-lock-wait). max-autotune times kernels
# on the GPU while compiling, so it runs last, alone, in the time left.
# Each job holds up to ≈ 14 GB of GPU memory (batch 1024): the 6 fit an H200 (139 GB), not an 80 GB H100.
# $OUT: speed.txt (rows, as measured), profiles.txt, log.txt (all output).
set -u
: "${OUT:?set OUT to an output folder}"
DEVICE=${DEVICE:-cuda} B=${B:-1024} B1=${B1:-1} BUDGET=${BUDGET:-540} T_PAR=${T_PAR:-240} PY=${PY:-python3}
export PYTHONPATH=${PYTHONPATH:-src} PYTHONUNBUFFERED=1
export TORCHINDUCTOR_COMPILE_THREADS=${TORCHINDUCTOR_COMPILE_THREADS:-3}   # 6 compiles share the cores
mkdir -p "$OUT/prof"
JOBS=$(mktemp -d)
SPEED=(benchmarks/model_speed.py --device "$DEVICE" --models gtpt-t-body
       --warmup 3 --repeats 5 --min-seconds 0.3 --gpu-lock "$JOBS/gpu.lock")

note() { echo "[$SECONDS s] $*" | tee -a "$OUT/log.txt"; }

job() {  # job NAME MAX_S ARGS...: model_speed.py ARGS in the background, killed by MAX_S or by BUDGET
  local name=$1 max=$2; shift 2
  local t=$((BUDGET - SECONDS - 5))
  ((t > max)) && t=$max
  if ((t < 20)); then note "$name: skipped, $t s left"; return; fi
  note "$name: start, timeout $t s"
  (
    timeout -k 5 "$t" $PY "${SPEED[@]}" "$@" >"$JOBS/$name.log" 2>&1
    rc=$?
    note "$name: exit $rc$( ((rc == 124 || rc == 137)) && echo ' (timed out)')"
    ((rc == 0)) || { tail -n 5 "$JOBS/$name.log"; echo failed >>"$JOBS/gpu.lock.ready"; }  # release the wait
  ) &
}

note "$(timeout 10 nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv,noheader 2>&1)"

# together, each timed once all have compiled
S=(--batch "$B" --check --out "$OUT/speed.txt")
P=("${S[@]}" --gpu-lock-wait 6)   # the number of jobs below
job graph-bf16w        "$T_PAR" --modes graph-bf16w "${P[@]}"
job s2d                "$T_PAR" --modes graph-bf16w --space-to-depth "${P[@]}"
job s2d-flex           "$T_PAR" --modes graph-bf16w --space-to-depth --attention flex "${P[@]}" \
                                --profile "$OUT/prof/s2d-flex"
job s2d-split          "$T_PAR" --modes graph-bf16w --space-to-depth --attention sdpa-split "${P[@]}"
job s2d-1x1mm          "$T_PAR" --modes graph-bf16w --space-to-depth --inductor conv_1x1_as_mm=True "${P[@]}"
job c8                 "$T_PAR" --modes graph-bf16w --input-channels 8 "${P[@]}"   # out of memory last time
wait

# last: the winners combined (the best attention kernel, the better first-convolution form, 1x1 convolutions
# as matrix products if that helped), and max-autotune on that combination, side by side (timings still
# take turns on the GPU). Convolutions stay with cuDNN under max-autotune: autotuning Triton convolution
# templates never finished in 334 s (night run); GEMMs (the linear layers, and the 1x1 convolutions if
# that variant won) get Triton templates with fused epilogues.
IFS='|' read -r BEST COMBO < <($PY - "$OUT/speed.txt" <<'PY'
import sys
from gtpt.models.attention import KERNELS
ms = {l.split()[1]: float(l.split()[3]) for l in open(sys.argv[1]) if l.startswith("gtpt-") and "graph-bf16w" in l}
flag = {"s2d": "--space-to-depth", "c8": "--input-channels 8", "nchw": "--memory-format contiguous",
        **{k: f"--attention {k}" for k in KERNELS}}   # model_speed.py's variant labels, back to flags
def flags(label):
    return " ".join(f"--inductor {t}" if "=" in t else flag.get(t, f"--sdpa-backend {t}")
                    for t in label.split("/")[1:])
inf = float("inf")
base = ms.get("graph-bf16w/s2d", inf)
first = "c8" if ms.get("graph-bf16w/c8", inf) < base else "s2d"
attention = min(["sdpa", "flex", "sdpa-split"], key=lambda k: ms.get(f"graph-bf16w/s2d/{k}", base if k == "sdpa" else inf))
combo = "graph-bf16w/" + first + ("" if attention == "sdpa" else f"/{attention}") \
    + ("/conv_1x1_as_mm=True" if ms.get("graph-bf16w/s2d/conv_1x1_as_mm=True", inf) < base else "")
best = min(ms, key=ms.get) if ms else "graph-bf16w/s2d"
print(flags(best), flags(combo) if combo != best else "", sep="|")
PY
)
note "fastest variant: graph-bf16w ${BEST:-(no flags)}; combination: ${COMBO:-(same)}"
export TORCHINDUCTOR_COMPILE_THREADS=$(nproc)
# shellcheck disable=SC2086
[ -n "$COMBO" ] && job combo "$T_PAR" --modes graph-bf16w $COMBO "${S[@]}"
# shellcheck disable=SC2086
job autotune-bf16w "$BUDGET" --modes autotune-bf16w ${COMBO:-$BEST} --inductor max_autotune_conv_backends=ATEN "${S[@]}" \
                   --profile "$OUT/prof/autotune"
wait

for f in "$JOBS"/*.log; do echo "=== ${f##*/}"; grep -v '^USDT' "$f"; done >>"$OUT/log.txt"
for f in $(find "$OUT/prof" -name '*.txt' | sort); do echo "=== ${f#"$OUT/prof/"}"; cat "$f"; echo; done >"$OUT/profiles.txt"
rm -rf "$OUT/prof" "$JOBS"
for f in speed.txt; do
  [ -f "$OUT/$f" ] || continue
  echo "== $f"
  grep -m1 '^machine' "$OUT/$f"
  grep -m1 '^model' "$OUT/$f"
  grep -v '^machine\|^model' "$OUT/$f"
done
note "done"
