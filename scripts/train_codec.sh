#!/usr/bin/env bash
# Retrain the codec's operating points and measure them: the exact commands behind
# weights/rd-q*.{safetensors,json} and weights/benchmark.json.
# Usage: bash scripts/train_codec.sh DATA_DIR   (MNIST in torchvision's layout, e.g. ../shared/data)
# q1, q2: about 25 minutes on a shared 2-core CPU. q4 (convolutional, 110 epochs) was trained on
# one H100 GPU in about 5 minutes; on a 2-core CPU expect well over an hour (--device auto uses a
# GPU when there is one). q3 (convolutional, from q4): about 35 minutes on the 2-core CPU.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$AE_ROOT"
data="${1:?usage: bash scripts/train_codec.sh DATA_DIR}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# 1. A first feedforward pass from scratch (plain MSE, ~40 B/digit), the starting point of q1 and q2.
python -m ae train-codec --out "$scratch/ff.safetensors" --id 3 --label 'ff (~40 B)' --target-bits 288 \
  --epochs 30 --data-dir "$data"
# 2. The feedforward points: fine-tuned towards their rate targets on the mean log-MSE (mean PSNR).
python -m ae train-codec --out weights/rd-q2.safetensors --id 2 --label 'q2 (~24 B)' --target-bits 160 \
  --init "$scratch/ff.safetensors" --distortion log-mse --beta 0.01 --epochs 15 --data-dir "$data"
python -m ae train-codec --out weights/rd-q1.safetensors --id 1 --label 'q1 (~12 B)' --target-bits 66 \
  --init weights/rd-q2.safetensors --distortion log-mse --beta 0.01 --epochs 15 --data-dir "$data"
# 3. The convolutional point (~40 B at >= 28 dB), from scratch; stored as float16 (3.6 MB).
python -m ae train-codec --out weights/rd-q4.safetensors --channels 8 16 32 --id 4 --label 'q4(~40B,conv)' \
  --arch rdcnn --latent 128 --hidden 512 --target-bits 288 --distortion log-mse --beta 0.002 --lr 2e-3 \
  --epochs 110 --device auto --threads 4 --half --quiet --data-dir "$data"
# 4. rd-q3 (~30 B at ~28 dB; id 5, as the feedforward rd-q3 it replaced had id 3): rd-q4 fine-tuned
#    towards ~215 bits, then continued at higher targets and lower learning rates (80 epochs in all,
#    each stage's cosine decay polishing the last); float16.
conv=(--distortion log-mse --threads 2 --device auto --quiet --data-dir "$data")
python -m ae train-codec --out "$scratch/q3a.safetensors" --id 5 --label high --target-bits 215 \
  --init weights/rd-q4.safetensors --beta 0.002 --lr 1e-3 --epochs 15 "${conv[@]}"
python -m ae train-codec --out "$scratch/q3b.safetensors" --id 5 --label high --target-bits 219 \
  --init "$scratch/q3a.safetensors" --beta 0.0038 --lr 5e-4 --epochs 20 "${conv[@]}"
python -m ae train-codec --out "$scratch/q3c.safetensors" --id 5 --label high --target-bits 222 \
  --init "$scratch/q3b.safetensors" --beta 0.0034 --lr 3e-4 --epochs 20 "${conv[@]}"
python -m ae train-codec --out weights/rd-q3.safetensors --id 5 --label 'q3 (~30 B, conv)' --target-bits 222 \
  --init "$scratch/q3c.safetensors" --beta 0.0032 --lr 2e-4 --epochs 25 --half "${conv[@]}"
# 5. Store the feedforward points as float16 too (5.5 MB instead of 11; the card records it).
python -m ae half rd-q1 rd-q2
# 6. Measure everything on the full test set; write the figures into the cards.
python -m ae benchmark --data-dir "$data" --threads 2 --json weights/benchmark.json --update-cards
