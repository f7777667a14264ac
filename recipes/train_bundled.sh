#!/usr/bin/env bash
# Retrain the checkpoints bundled in src/hf_melody/checkpoints/ (CPU: ~3 h for folk-base and ~15 min for each
# classic on one core each) and copy them in. A stopped run resumes when the script is run again.
#   bash recipes/train_bundled.sh [names...]      (default: folk-base original deeper-thinner wider-shallower)
set -euo pipefail
cd "$(dirname "$0")/.."
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
names=("${@:-folk-base original deeper-thinner wider-shallower}")
for name in ${names[@]}; do
  recipe=$name; [ "$name" = folk-base ] && recipe=small
  accelerate launch --config_file recipes/accelerate_configs/cpu.yaml recipes/train.py \
    --config recipes/$recipe.yaml --output_dir out/ckpt/$name
  dest=src/hf_melody/checkpoints/$name
  rm -rf "$dest"; mkdir -p "$dest"
  cp out/ckpt/$name/{config.json,generation_config.json,model.safetensors,miditok.json,training_info.json,training_log.json} "$dest/"
  echo "bundled $name -> $dest"
done
