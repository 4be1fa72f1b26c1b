#!/usr/bin/env bash
# Retrain the three shipped models and measure them: the exact commands behind weights/*.json.
# Usage: bash scripts/train_shipped.sh DATA_DIR   (MNIST in torchvision's layout, e.g. ../shared/data)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$AE_ROOT"
data="${1:?usage: bash scripts/train_shipped.sh DATA_DIR}"
# Seeded, so a rerun gives the same weights on the same thread count (each card records
# "threads": the classifier was trained with 2, cnn and ff with OMP_NUM_THREADS=1). The settings are
# spelled out because the CLI's defaults are the quick ones (ae.train.default_settings).
python -m ae train --model classifier --epochs 6 --data-dir "$data" --out weights/classifier.safetensors
python -m ae train --model cnn --epochs 20 --lr 1e-3 --batch-size 128 --train-size 60000 --data-dir "$data" --out weights/cnn.safetensors
python -m ae train --model ff --epochs 40 --lr 1e-3 --batch-size 128 --train-size 60000 --half --data-dir "$data" --out weights/ff.safetensors
python -m ae evaluate --data-dir "$data" --update-cards
