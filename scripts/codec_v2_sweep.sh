#!/usr/bin/env bash
# Codec v2 candidates: the convolutional rd-q4 model fine-tuned towards each of issue 12's rates
# (low ~36, mid ~112, high ~215, new ~440 bits per digit), then measured on the full test set.
# Usage: bash scripts/codec_v2_sweep.sh DATA_DIR OUT_DIR   (MNIST in torchvision's layout)
# 15 epochs each: ~7-9 minutes a point on this project's 2-core CPU at nice 10 (--device auto
# takes a GPU when there is one). Nothing here touches weights/: ship a point by retraining it
# into weights/ with a free id (0-7 fit the format v2 single-digit header).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$AE_ROOT"
data="${1:?usage: bash scripts/codec_v2_sweep.sh DATA_DIR OUT_DIR}"
out="${2:?usage: bash scripts/codec_v2_sweep.sh DATA_DIR OUT_DIR}"
mkdir -p "$out"
common=(--distortion log-mse --lr 1e-3 --epochs "${EPOCHS:-15}" --threads 2 --device auto --quiet --data-dir "$data")
train() { nice -n 10 python -m ae train-codec "$@" "${common[@]}"; }
train --out "$out/mid.safetensors"  --id 6 --label mid  --target-bits 112 --init weights/rd-q4.safetensors --beta 0.006
train --out "$out/low.safetensors"  --id 5 --label low  --target-bits 36  --init "$out/mid.safetensors" --beta 0.03
train --out "$out/high.safetensors" --id 7 --label high --target-bits 215 --init weights/rd-q4.safetensors --beta 0.002
train --out "$out/new.safetensors"  --id 7 --label new  --target-bits 440 --init weights/rd-q4.safetensors --beta 0.0005
python scripts/measure_codec_points.py --data-dir "$data" "$out"/{low,mid,high,new}.safetensors
