package worker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ringtrain/ringtrain/trainer"
)

// TrainerPackage is the NewTrainer of package trainer: the real model,
// AdamW and shards. Rank 0 writes the whole checkpoint (all ranks hold
// identical weights and moments); the other ranks have no part to write.
func TrainerPackage(ctx context.Context, cfg TrainerConfig) (Trainer, error) {
	t, err := trainer.New(trainer.Options{Job: cfg.Job, Rank: cfg.Rank, World: cfg.World, BucketBytes: cfg.BucketBytes})
	if err != nil {
		return nil, err
	}
	if cfg.Resume != "" {
		if err := t.Restore(cfg.Resume); err != nil {
			t.Close()
			return nil, fmt.Errorf("restore %s: %w", cfg.Resume, err)
		}
	}
	if int(t.Completed()) != cfg.StartStep {
		t.Close()
		return nil, fmt.Errorf("trainer is at step %d, generation starts at step %d (resume %q)", t.Completed(), cfg.StartStep, cfg.Resume)
	}
	return &trainerAdapter{t: t, cfg: cfg}, nil
}

var _ NewTrainer = TrainerPackage

type trainerAdapter struct {
	t    *trainer.Trainer
	cfg  TrainerConfig
	loss float64
}

func (a *trainerAdapter) Step(ctx context.Context, r Reducer) (StepResult, error) {
	res, err := a.t.TrainStep(ctx, r, false)
	if err != nil {
		return StepResult{}, err
	}
	a.loss = res.Loss
	return StepResult{Step: int(res.Completed), Loss: res.Loss, LR: res.LR, GradNorm: res.GradNorm,
		Tokens: res.Tokens, Duration: res.Duration}, nil
}

func (a *trainerAdapter) Eval(ctx context.Context, r Reducer) (float64, error) {
	return a.t.Eval(ctx, r)
}

func (a *trainerAdapter) SaveCheckpoint(dir string, part int) error {
	if part != 0 {
		return nil
	}
	jb, err := json.Marshal(a.cfg.Job)
	if err != nil {
		return err
	}
	return a.t.SaveCheckpoint(trainer.DirWriter(dir), trainer.State{Loss: a.loss, Job: jb})
}

func (a *trainerAdapter) Close() error { return a.t.Close() }
