package shard

import (
	"fmt"
	"path/filepath"
)

// ShardName returns dir/prefix_NNNNNN.bin, the name of shard i of a split
// (e.g. ShardName("data", "train", 3) = "data/train_000003.bin").
func ShardName(dir, prefix string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("%s_%06d.bin", prefix, i))
}

// SplitSizes returns the shard sizes WriteSharded uses for n tokens and at
// most maxPerShard tokens a shard: k = ⌈n/maxPerShard⌉ shards of near-equal
// size (the first n mod k get one token more), so no shard is a small tail.
// n = 0 gives no shards.
func SplitSizes(n int64, maxPerShard int64) []int64 {
	if n <= 0 || maxPerShard <= 0 {
		return nil
	}
	k := (n + maxPerShard - 1) / maxPerShard
	sizes := make([]int64, k)
	for i := range sizes {
		sizes[i] = n / k
		if int64(i) < n%k {
			sizes[i]++
		}
	}
	return sizes
}

// WriteSharded writes tokens as the llm.c shards ShardName(dir, prefix, 0),
// ShardName(dir, prefix, 1), … with the sizes of SplitSizes and returns
// their paths. maxPerShard must be in 1..MaxTokens. done, if not nil, is
// called after each shard with the number of tokens written so far.
func WriteSharded(dir, prefix string, tokens []uint16, maxPerShard int64, done func(written int64)) ([]string, error) {
	if maxPerShard < 1 || maxPerShard > MaxTokens {
		return nil, fmt.Errorf("%w: %d tokens per shard (want 1..%d)", ErrTooMany, maxPerShard, int64(MaxTokens))
	}
	var paths []string
	var off int64
	for i, n := range SplitSizes(int64(len(tokens)), maxPerShard) {
		p := ShardName(dir, prefix, i)
		if err := WriteFile(p, tokens[off:off+n]); err != nil {
			return paths, err
		}
		off += n
		paths = append(paths, p)
		if done != nil {
			done(off)
		}
	}
	return paths, nil
}
