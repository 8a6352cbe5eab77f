// Package shard reads and writes token shards and turns them into training
// batches (docs/data.md).
//
// # File format
//
// A shard is the llm.c format: a header of 256 little-endian int32
// ([0] = Magic 20240520, [1] = Version 1, [2] = token count n, the rest 0)
// followed by n little-endian uint16 tokens; the file is exactly 1024 + 2n
// bytes. Open maps it read-only and, on little-endian machines, returns the
// tokens as a zero-copy []uint16 over the mapping. A raw nanoGPT .bin
// (uint16 tokens, no header) is read only with WithFormat(FormatRaw).
// Open checks the header, the size and that every token id is below the
// vocabulary size, once; errors name the file and the offending value and
// wrap the sentinels ErrBadMagic, ErrBadVersion, ErrSize, ErrTokenRange,
// ErrTooShort, ErrNoFiles.
//
// Writer (Create, Write, Close) streams tokens to a temporary file, then
// writes the header, fsyncs and renames, so a shard name never refers to a
// partial file.
//
// # Sequences
//
// A Dataset (OpenGlob) is the list of sequences of context T over the
// shards sorted by file name: shard f holds S_f = ⌊(n_f−1)/T⌋ sequences,
// sequence k being x = tok[kT : kT+T], y = tok[kT+1 : kT+T+1]; global index
// i is list entry i mod ΣS_f.
//
// # Order and batches
//
// A Sampler maps a data position p (sequences consumed so far; what a
// checkpoint stores) to a sequence index: Sequential visits p mod N,
// Shuffled visits Permutation(seed, p/N)[p mod N], a seeded Fisher–Yates
// permutation that is a pure function of (seed, epoch). Step s of global
// batch G covers positions s·G … s·G+G−1; rank r of W takes ⌊r·G/W⌋ …
// ⌊(r+1)·G/W⌋−1 of them (any W ≤ G), split into micro-batches:
//
//	ds, err := shard.OpenGlob("data/train_*.bin", vocabSize, T)
//	if err != nil { return err }
//	defer ds.Close()
//	smp, err := shard.NewSampler(ds, shard.Shuffled, seed)
//	nm, err := shard.NumMicro(G, rank, world, micro)
//	x, y := make([]int32, micro*T), make([]int32, micro*T)
//	for m := range nm {
//		n, err := smp.FillMicro(x, y, step, G, rank, world, m, micro) // n sequences, rows of T
//		...
//	}
//
// Resuming from a checkpoint with position p continues at step p/G; the
// batches are identical to those of an uninterrupted run.
package shard
