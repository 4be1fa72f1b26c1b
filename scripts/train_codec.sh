#!/usr/bin/env bash
# Retrain the codec's operating points and measure them: the exact commands behind
# weights/rd-q*.{safetensors,json} and weights/benchmark.json.
# Usage: bash scripts/train_codec.sh DATA_DIR   (MNIST in torchvision's layout, e.g. ../shared/data)
# q1-q3: about 30 minutes on a shared 2-core CPU. q4 (convolutional, 110 epochs) was trained on
# one H100 GPU in about 5 minutes; on a 2-core CPU expect well over an hour (--device auto uses a
# GPU when there is one).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$AE_ROOT"
data="${1:?usage: bash scripts/train_codec.sh DATA_DIR}"
# 1. A first pass from scratch (plain MSE, ~40 B/digit), the starting point of the others.
python -m ae train-codec --out weights/rd-q3.safetensors --id 3 --label 'q3 (~40 B)' --target-bits 288 \
  --epochs 30 --data-dir "$data"
# 2. Each shipped point: fine-tuned towards its rate target on the mean log-MSE (mean PSNR).
python -m ae train-codec --out weights/rd-q2.safetensors --id 2 --label 'q2 (~24 B)' --target-bits 160 \
  --init weights/rd-q3.safetensors --distortion log-mse --beta 0.01 --epochs 15 --data-dir "$data"
python -m ae train-codec --out weights/rd-q1.safetensors --id 1 --label 'q1 (~12 B)' --target-bits 66 \
  --init weights/rd-q2.safetensors --distortion log-mse --beta 0.01 --epochs 15 --data-dir "$data"
python -m ae train-codec --out weights/rd-q3.safetensors --id 3 --label 'q3 (~40 B)' --target-bits 280 \
  --init weights/rd-q2.safetensors --distortion log-mse --beta 0.002 --epochs 15 --data-dir "$data"
# 3. The convolutional point (~40 B at >= 28 dB), from scratch; stored as float16 (3.6 MB).
python -m ae train-codec --out weights/rd-q4.safetensors --channels 8 16 32 --id 4 --label 'q4(~40B,conv)' \
  --arch rdcnn --latent 128 --hidden 512 --target-bits 288 --distortion log-mse --beta 0.002 --lr 2e-3 \
  --epochs 110 --device auto --threads 4 --half --quiet --data-dir "$data"
# 4. Store the feedforward points as float16 too (5.5 MB instead of 11; the card records it).
python -m ae half rd-q1 rd-q2 rd-q3
# 5. Measure everything on the full test set; write the figures into the cards.
python -m ae benchmark --data-dir "$data" --threads 2 --json weights/benchmark.json --update-cards
