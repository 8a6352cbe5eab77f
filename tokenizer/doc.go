// Package tokenizer is ringtrain's byte-level BPE tokenizer (GPT-2 style).
// Work in progress: see the final doc below once complete.
package tokenizer
