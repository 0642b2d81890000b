#!/usr/bin/env bash
# Set up (idempotently) and run the main job on the bundled sample images.
# Until trained default weights ship (training issue), it scores with UNTRAINED weights made here,
# which exercises the whole pipeline but gives meaningless scores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=output/samples
mkdir -p "$out"
samples=$(.venv/bin/deepiqa samples)
for variant in wadiqam-nr wadiqam-fr; do
  [ -f "$out/untrained-$variant.safetensors" ] ||
    .venv/bin/deepiqa init "$out/untrained-$variant.safetensors" --variant "$variant" --seed 0
done
.venv/bin/deepiqa score "$samples/nr" --weights "$out/untrained-wadiqam-nr.safetensors" \
  --format csv --output "$out/nr-scores.csv"
.venv/bin/deepiqa score "$samples/fr/distorted" --ref "$samples/fr/reference" \
  --weights "$out/untrained-wadiqam-fr.safetensors" --format csv --output "$out/fr-scores.csv"
.venv/bin/deepiqa score "$samples/nr/astronaut.jpg" \
  --weights "$out/untrained-wadiqam-nr.safetensors" --map "$out/astronaut-map.png"
echo "scores written to $out/ (untrained weights: the numbers are not quality judgements yet)"
