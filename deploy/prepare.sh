#!/usr/bin/env bash
# Fills deploy/work for the compose cluster: the job file, a BPE tokenizer
# and token shards of data/tinyshakespeare.txt (vocabulary 4096, the small
# preset's).
set -euo pipefail
cd "$(dirname "$0")/.."
rt=./bin/ringtrain
[ -x "$rt" ] || make build
w=deploy/work
mkdir -p "$w"
cp deploy/job.yaml "$w/job.yaml"
[ -f "$w/tokenizer/vocab.json" ] || $rt tokenizer train --input data/tinyshakespeare.txt --vocab-size 4096 \
	--special '<|endoftext|>' --out "$w/tokenizer"
ls "$w"/data/train_*.bin >/dev/null 2>&1 || $rt prepare --tokenizer "$w/tokenizer" \
	--input data/tinyshakespeare.txt --out "$w/data" --val-fraction 0.1
