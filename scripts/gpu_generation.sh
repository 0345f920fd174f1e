#!/usr/bin/env bash
# The offline generation experiment on one GPU machine, in one go (issue 13): build the world and its
# clips there (deterministic: the same as on any machine), train the CLAP- and T-CLAP-conditioned
# UNets side by side with configs/audioldm/offline_gpu.yaml for $MINUTES each, run
# `tclap experiment generation` on them, and leave at most 8 files in $OUT: the two pipelines (one
# archive), metrics.json, table.md and the logs. The VAE and the two text towers come from the
# shipped pipelines (demo/checkpoints), the detector from demo/checkpoints/detector.pt.
#
# What the machine lacks (diffusers, librosa, soundfile and the few packages of theirs it has not)
# travels as wheels in .whl/ (8.4 MB, fetched here by scripts/gpu_wheels.sh), the judging CLAP as $JUDGE
# (a CLAP that conditions neither pipeline, e.g. results/offline/seed1/control/final of
# `tclap experiment offline`). With the device tool:
#   run(command="bash scripts/gpu_generation.sh", carry=[".whl", "results/offline/seed1/control/final"])
#
# Environment (defaults are the GPU run's; tests/test_gpu_script.py runs it on a CPU on tiny settings):
#   OUT (results/gpu_generation), WORK (/tmp/tclap_gpu), DEVICE (cuda), MINUTES (3: per UNet, side by
#   side), JUDGE, FILES_PER_CLASS (40), CLIPS (16000 training-set clips), TEST_CLIPS (2000, as
#   configs/data/offline.yaml), GENERATION_ARGS (extra `tclap experiment generation` flags).
# Arguments: extra `--set section.key=value` overrides for both UNet runs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu_generation}
WORK=${WORK:-/tmp/tclap_gpu}
DEVICE=${DEVICE:-cuda}
MINUTES=${MINUTES:-3}
JUDGE=${JUDGE:-results/offline/seed1/control/final}
FILES_PER_CLASS=${FILES_PER_CLASS:-40}
CLIPS=${CLIPS:-16000}
TEST_CLIPS=${TEST_CLIPS:-2000}
read -r -a GENERATION_ARGS <<< "${GENERATION_ARGS:-}"
mkdir -p "$OUT" "$WORK"
exec > >(tee "$OUT/run.log") 2>&1

if ! python3 -c "import diffusers, librosa, soundfile" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
tclap() { python3 -m tclap.cli "$@"; }
start=$SECONDS
[ -d "$JUDGE" ] || { echo "JUDGE=$JUDGE: no such CLAP directory (carry one; see the header)"; exit 2; }

echo "== data ($((SECONDS - start)) s)"
workers=$(nproc)
tclap synth-world --out "$WORK/world" --config configs/data/offline.yaml --files-per-class "$FILES_PER_CLASS"
tclap mixup --library "$WORK/world" --out "$WORK/mixup" --config configs/data/offline.yaml \
    --clips "$TEST_CLIPS" --workers "$workers"
tclap mixup --library "$WORK/world" --out "$WORK/mixup_ldm" --config configs/data/offline.yaml \
    --clips "$CLIPS" --seed 1 --workers "$workers"
tclap order-free-pairs --mixup "$WORK/mixup" --out "$WORK/orderfree_train.jsonl"

echo "== both UNets, side by side, $MINUTES min each ($((SECONDS - start)) s)"
pids=()
for cond in clap tclap; do
  python3 train_audioldm.py --cond "$cond" --config configs/audioldm/offline_gpu.yaml \
      --set model.vae=demo/checkpoints/tclap --set data.mixup="$WORK/mixup_ldm" \
      --set "data.captions=[$WORK/orderfree_train.jsonl]" --set train.max_minutes="$MINUTES" \
      --output-dir "$WORK/audioldm_$cond" "$@" > "$OUT/train_$cond.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

echo "== generation experiment ($((SECONDS - start)) s)"
printf 'generation:\n  mixup: %s\n' "$WORK/mixup" > "$WORK/generation.yaml"
tclap experiment generation --config "$WORK/generation.yaml" --pipeline CLAP="$WORK/audioldm_clap/pipeline" \
    --pipeline T-CLAP="$WORK/audioldm_tclap/pipeline" --detector demo/checkpoints/detector.pt --judge "$JUDGE" \
    --device "$DEVICE" --out "$WORK/generation" "${GENERATION_ARGS[@]}"

cp "$WORK/generation/metrics.json" "$WORK/generation/table.md" "$OUT/"
for cond in clap tclap; do cp "$WORK/audioldm_$cond/metrics.csv" "$WORK/audioldm_$cond/pipeline/training_metrics.csv"; done
tar czf "$OUT/pipelines.tar.gz" -C "$WORK" audioldm_clap/pipeline audioldm_tclap/pipeline
echo "== done in $((SECONDS - start)) s: $OUT"
