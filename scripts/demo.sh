#!/usr/bin/env bash
# make demo: raw text → BPE tokenizer → token shards → a 2-worker cluster
# (embedded etcd, coordinator, workers over gRPC) → evaluation → a sample.
# Everything lands in runs/demo; a second run resumes from its checkpoint
# (delete runs/demo to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
rt=./bin/ringtrain
out=runs/demo
mkdir -p "$out"

if [ ! -f "$out/tokenizer/vocab.json" ]; then
	echo "== 1/5 train a BPE tokenizer (vocab 4096) on tiny Shakespeare"
	$rt tokenizer train --input data/tinyshakespeare.txt --vocab-size 4096 \
		--special '<|endoftext|>' --out "$out/tokenizer"
fi
if ! ls "$out"/data/train_*.bin >/dev/null 2>&1; then
	echo "== 2/5 tokenize into shards"
	$rt prepare --tokenizer "$out/tokenizer" --input data/tinyshakespeare.txt \
		--out "$out/data" --val-fraction 0.1
fi
echo "== 3/5 train: ringtrain local with ${WORKERS:-2} workers"
$rt local --job examples/shakespeare.yaml --workers "${WORKERS:-2}" --run-dir "$out/run" ${STEPS:+--steps "$STEPS"}
echo "== 4/5 evaluate the final checkpoint on the validation shards"
$rt eval --checkpoint "$out/run" --data "$out/data/val_*.bin"
echo "== 5/5 sample from it"
printf 'ROMEO:'
$rt generate --checkpoint "$out/run" --tokenizer "$out/tokenizer" --prompt "ROMEO:" \
	--max-tokens 80 --temperature 0.8 --top-k 40 --seed 1
echo
