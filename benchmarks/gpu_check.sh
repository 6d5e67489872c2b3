#!/usr/bin/env bash
# The GPU checks of the performance work, in one run of a few minutes on one GPU:
#   1. whole steps: every method's training step and evaluation batch, ours vs the official cost and the
#      image-encoder floor, ViT-B/16 shapes (random weights), fp16, Caltech- to ImageNet-like class counts
#      (steps/s, peak memory per path);
#   2. the ImageNet-size memory case: GOPro (1000 classes, batch 4, 3 views) and CoCoOp (1000 classes, batch 4),
#      with and without MODEL.TEXT_RECOMPUTE_BATCH, measured peaks beside the memory model's predictions;
#   3. the text cost cases at ImageNet's 1000 classes.
# Tables go to stdout, JSON files to $OUT (or ./gpu_check_results).
#
#   bash benchmarks/gpu_check.sh
#
# A machine without the project's pure-Python dependencies (yacs, clip-anytorch, ftfy, wcwidth) takes them
# from wheels in .whl/ when that folder exists, e.g. fetched beforehand with
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl yacs clip-anytorch ftfy wcwidth
set -uo pipefail  # one failing part does not stop the others
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
RESULTS=${OUT:-gpu_check_results}
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/gpu_check_site .whl/*.whl
    export PYTHONPATH="/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(), torch.__version__)"
nvidia-smi --query-gpu=name,memory.total,memory.used,utilization.gpu --format=csv || true

timeout 420 "$PY" benchmarks/whole_step.py --device cuda --backbone ViT-B/16 --precision fp16 --repeats 3 \
    --classes 5 100 500 1000 --eval-batch 32 --json "$RESULTS/whole_step.json"
timeout 180 "$PY" benchmarks/imagenet_memory.py --device cuda --backbone ViT-B/16 --precision fp16 \
    --json "$RESULTS/imagenet_memory.json"
timeout 120 "$PY" benchmarks/text_cost.py --device cuda --backbone ViT-B/16 --precision fp16 --repeats 5 \
    --json "$RESULTS/text_cost.json"
