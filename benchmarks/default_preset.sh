#!/usr/bin/env bash
# The default preset and settings (what `unet-tf train` uses) on the two real datasets, as the
# README's "Measured" section reports them.
# Usage, from the repository root: bash benchmarks/default_preset.sh [EPOCHS]
# Writes runs under saved_models/bench_* and a log per run under benchmarks/results/.
set -euo pipefail
epochs=${1:-40}
data=../shared/data
mkdir -p benchmarks/results
rm -rf saved_models/bench_pets_default saved_models/bench_isbi_default  # a finished run is kept

# Oxford pets sample: seeded 80% of trainval for training, the other 20% for evaluation.
/usr/bin/time -f "wall %e s" unet-tf train --data "oxford-pets:$data/oxford_pets_sample" \
  --image-size 128 --epochs "$epochs" --batch-size 16 \
  --out saved_models/bench_pets_default 2>&1 | tee benchmarks/results/default_pets.log

# ISBI 2012: seeded 80% of the 22 slices for training (4 held out), 256 px.
/usr/bin/time -f "wall %e s" unet-tf train --data "folder:$data/isbi2012_em" \
  --classes membrane,interior --mask-values 0,255 --vflip --rot90 \
  --image-size 256 --epochs "$epochs" --batch-size 4 \
  --out saved_models/bench_isbi_default 2>&1 | tee benchmarks/results/default_isbi.log
