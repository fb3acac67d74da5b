#!/usr/bin/env bash
# GPU speed sweep for GTPT-T body at batch 1024, bf16: which variant closes the gap to the 5x goal
# (>= 41,630 img/s, <= 24.6 ms per batch; best so far 34,546 img/s = graph-bf16w, H200, 2026-11-26).
# The candidates come from that run's profile (benchmarks/results/h200_2026-11-26_evening.md):
# the SDPA backend (cuDNN's flash kernel took 22% of the time at head dim 16), the first convolution
# (3 input channels: 12% in a slow generic kernel; try NCHW, or 8 channels), and max-autotune.
#
#   from the repo root, on the GPU machine:  OUT=<folder> bash benchmarks/gpu_sweep.sh   (<= BUDGET s)
#   CPU dry run (typos, timeouts):  DEVICE=cpu B=2 BUDGET=60 T_PAR=40 OUT=/tmp/o bash benchmarks/gpu_sweep.sh
#
# Each variant is its own process; all start together, compile at once on the CPU cores and take turns
# on the GPU (model_speed.py --gpu-lock), so no timing shares the GPU. max-autotune times kernels on the
# GPU while compiling, so it runs last, alone, in the time left.
# $OUT: speed.txt (rows, as measured), profiles.txt, log.txt (all output).
set -u
: "${OUT:?set OUT to an output folder}"
DEVICE=${DEVICE:-cuda} B=${B:-1024} B1=${B1:-1} BUDGET=${BUDGET:-300} T_PAR=${T_PAR:-150} PY=${PY:-python3}
export PYTHONPATH=${PYTHONPATH:-src} PYTHONUNBUFFERED=1
export TORCHINDUCTOR_COMPILE_THREADS=${TORCHINDUCTOR_COMPILE_THREADS:-4}   # 7 compiles share the cores
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
    ((rc == 0)) || tail -n 5 "$JOBS/$name.log"
  ) &
}

note "$(timeout 10 nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv,noheader 2>&1)"

# together, in order of value
S=(--batch "$B" --check --out "$OUT/speed.txt")
job graph-bf16w        "$T_PAR" --modes graph-bf16w "${S[@]}"
job sdpa-flash         "$T_PAR" --modes graph-bf16w --sdpa-backend flash "${S[@]}" --profile "$OUT/prof/flash"
job sdpa-efficient     "$T_PAR" --modes graph-bf16w --sdpa-backend mem_efficient "${S[@]}"
job sdpa-math          "$T_PAR" --modes graph-bf16w --sdpa-backend math "${S[@]}"
job contiguous         "$T_PAR" --modes graph-bf16w --memory-format contiguous "${S[@]}" --profile "$OUT/prof/nchw"
job input-c8           "$T_PAR" --modes graph-bf16w --input-channels 8 "${S[@]}"
job graph-bf16         "$T_PAR" --modes graph-bf16 "${S[@]}"
wait

# alone, last
job autotune-bf16w "$BUDGET" --modes autotune-bf16w "${S[@]}"
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
