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
if ! ls "$out"/data/train_*.bin >/dev/null 2>&1 || [ ! -f "$out/data/tokenizer/vocab.json" ]; then
	echo "== 2/5 tokenize into shards"
	$rt prepare --tokenizer "$out/tokenizer" --input data/tinyshakespeare.txt \
		--out "$out/data" --val-fraction 0.1 --overwrite
fi
echo "== 3/5 train: ringtrain local with ${WORKERS:-2} workers"
$rt local --job examples/shakespeare.yaml --workers "${WORKERS:-2}" --run-dir "$out/run" ${STEPS:+--steps "$STEPS"}
echo "== 4/5 evaluate the final checkpoint on the validation shards"
$rt eval --checkpoint "$out/run" --data "$out/data/val_*.bin"
echo "== 5/5 sample from it (the tokenizer is found through the run's job: prepare kept it beside the shards)"
printf 'ROMEO:'
$rt generate --checkpoint "$out/run" --prompt "ROMEO:" \
	--max-tokens 80 --temperature 0.8 --top-k 40 --seed 1
echo

ckpt=$(ls -d "$out"/run/checkpoints/step_* 2>/dev/null | tail -n 1)
cat <<EOF
== where things are
  run dir     $out/run (metrics.jsonl: one line per step; checkpoints/)
  checkpoint  ${ckpt:-none} (the newest; --checkpoint $out/run picks it)
  tokenizer   $out/data/tokenizer (prepare's copy beside the shards, which the job finds)
  shards      $out/data/train_*.bin, $out/data/val_*.bin
== next
  $rt generate --checkpoint $out/run --prompt "JULIET:" --max-tokens 200 --temperature 0.8
  $rt export --checkpoint $out/run --format hf-llama --out $out/hf    # a Hugging Face Llama dir
  $rt plot --run $out/run --out $out/loss.png                         # loss, lr, tokens/s by step
  $rt status --coordinator ADDR                   # of a running coordinator: the address it logs at start
  $rt job check examples/shakespeare.yaml         # every key of the job, resolved (docs/job.md)
EOF
