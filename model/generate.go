package model

import (
	"fmt"
	"slices"
	"time"
)

// GenerateConfig bounds one call of Decoder.Generate.
type GenerateConfig struct {
	MaxTokens int     // new tokens at most (the stop token not counted)
	Stop      []int32 // ids that end generation (not emitted)
	// Vocab restricts sampling to ids < Vocab when the tokenizer knows
	// fewer ids than the model; 0 means the model's vocab_size.
	Vocab int
	// NoCache recomputes the whole window with Prefill for every token
	// instead of Step: the same tokens up to float rounding, for
	// measuring what the cache saves.
	NoCache bool
}

// GenerateStats describes one Generate call.
type GenerateStats struct {
	PromptTokens int           // prompt tokens run (after dropping any beyond MaxT)
	Dropped      int           // prompt tokens dropped from the front
	NewTokens    int           // tokens emitted
	Stopped      bool          // ended at a stop token
	Slides       int           // times the window slid (a re-prefill)
	Prefill      time.Duration // the prompt's Prefill
	Decode       time.Duration // everything after it: steps, re-prefills, sampling, emit
}

// Generate continues prompt with up to cfg.MaxTokens tokens drawn by s and
// calls emit with each, in order, as soon as it is drawn; an error from
// emit ends generation and is returned.
//
// Context policy (a sliding window): the cache holds at most MaxT tokens.
// A prompt longer than MaxT keeps its last MaxT tokens. When a new token
// does not fit, the window slides: the last MaxT/2 tokens (the new one
// included) are prefilled again at positions 0.., and decoding continues
// from there. So generation never stops for lack of context, and a token
// always sees between MaxT/2 and MaxT tokens of context once the window
// has slid.
func (d *Decoder) Generate(prompt []int32, cfg GenerateConfig, s *Sampler, emit func(tok int32) error) (GenerateStats, error) {
	var st GenerateStats
	if len(prompt) == 0 {
		return st, fmt.Errorf("model: Generate needs at least one prompt token")
	}
	vocab := cfg.Vocab
	if vocab <= 0 || vocab > d.Config.VocabSize {
		vocab = d.Config.VocabSize
	}
	if len(prompt) > d.MaxT {
		st.Dropped = len(prompt) - d.MaxT
		prompt = prompt[st.Dropped:]
	}
	st.PromptTokens = len(prompt)
	// win holds the tokens of the window, the cache's tokens with the cache
	win := make([]int32, len(prompt), d.MaxT)
	copy(win, prompt)

	start := time.Now()
	logits := d.Prefill(win)
	st.Prefill = time.Since(start)
	start = time.Now()
	for st.NewTokens < cfg.MaxTokens {
		tok := s.Sample(logits[:vocab])
		if slices.Contains(cfg.Stop, tok) {
			st.Stopped = true
			break
		}
		st.NewTokens++
		if err := emit(tok); err != nil {
			st.Decode = time.Since(start)
			return st, err
		}
		if st.NewTokens == cfg.MaxTokens {
			break // its logits would go unused
		}
		if len(win) == d.MaxT {
			keep := max(d.MaxT/2, 1) - 1 // and tok
			copy(win, win[len(win)-keep:])
			win = win[:keep]
			st.Slides++
			win = append(win, tok)
			logits = d.Prefill(win)
			continue
		}
		win = append(win, tok)
		if cfg.NoCache {
			logits = d.Prefill(win)
		} else {
			logits = d.Step(tok)
		}
	}
	st.Decode = time.Since(start)
	return st, nil
}
