package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/tokenizer"
	"github.com/ringtrain/ringtrain/trainer"
)

func init() {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Work with job files",
	}
	cmd.AddCommand(newJobCheckCmd())
	rootCmd.AddCommand(cmd)
}

func newJobCheckCmd() *cobra.Command {
	var f struct {
		workers int
		sets    []string
	}
	cmd := &cobra.Command{
		Use:   "check FILE [--workers N] [--set key=value]...",
		Short: "Validate a job file and print it resolved, with the batch split per worker",
		Long: `Reads FILE as local and coordinator do (with the --set overrides applied),
validates it, and prints the resolved job: every key with its value, defaults
filled in and the model preset expanded (docs/job.md explains each key). The
output is a valid job file. Comment lines at the end give what follows from
it: the parameter count, the tokens of one step, and for each world size the
job can run on (or --workers N) the sequences per worker, the micro-batches
per worker and step (the gradient accumulation steps). Paths that do not
exist here (data globs matching nothing, init, tokenizer) are warnings on
stderr, since the job may be meant for other machines.`,
		Example: `  ringtrain job check examples/shakespeare.yaml --workers 2 --set train.lr=1e-3`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, _, err := job.LoadText(args[0], f.sets...)
			if err != nil {
				return err
			}
			cfg, err := trainer.ModelConfig(j.Model)
			if err != nil {
				return fmt.Errorf("job file %s: %w", args[0], err)
			}
			var sizes []int
			for n := j.Workers.Max; n >= j.Workers.Min; n-- {
				sizes = append(sizes, n)
			}
			if f.workers != 0 {
				if err := j.Validate(f.workers); err != nil {
					return fmt.Errorf("--workers %d: %w", f.workers, err)
				}
				sizes = []int{f.workers}
			}
			warnPaths(j)
			return printResolved(cmd.OutOrStdout(), args[0], j, cfg, sizes)
		},
	}
	cmd.Flags().IntVar(&f.workers, "workers", 0, "show the split for this world size only (0: every size in workers.min..max the job can run on)")
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override a key of the job file: --set train.lr=1e-3 (repeatable)")
	return cmd
}

func printResolved(w io.Writer, file string, j *job.Job, cfg model.Config, sizes []int) error {
	m := &j.Model // the model as built: the preset's sizes filled in
	m.VocabSize, m.ContextLength, m.DModel, m.NumLayers = cfg.VocabSize, cfg.ContextLength, cfg.DModel, cfg.NumLayers
	m.NumHeads, m.DFF, m.RopeTheta = cfg.NumHeads, cfg.DFF, cfg.RopeTheta
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(j); err != nil {
		return err
	}
	fmt.Fprintf(w, "# %s, resolved: every key, defaults filled in (docs/job.md)\n%s", file, buf.Bytes())
	fmt.Fprintf(w, "# model: %d parameters; one step: global_batch %d × context_length %d = %d tokens\n",
		cfg.NumParams(), j.Train.GlobalBatch, cfg.ContextLength, j.Train.GlobalBatch*cfg.ContextLength)
	if d := j.TokenizerDir(); d != "" {
		fmt.Fprintf(w, "# tokenizer: %s (generate and export use it)\n", d)
	}
	fmt.Fprintf(w, "# %7s  %16s  %s\n", "workers", "per-worker batch", "micro-batches of ≤ train.micro_batch per step (= gradient accumulation steps)")
	for _, n := range sizes {
		s := j.Split(n)
		batch := fmt.Sprint(s.MaxBatch)
		if s.MinBatch != s.MaxBatch {
			batch = fmt.Sprintf("%d-%d", s.MinBatch, s.MaxBatch)
		}
		fmt.Fprintf(w, "# %7d  %16s  %d\n", n, batch, s.Micro)
	}
	return nil
}

// warnPaths warns about the job's paths that do not exist on this machine.
func warnPaths(j *job.Job) {
	for key, glob := range map[string]string{"data.train": j.Data.Train, "data.val": j.Data.Val} {
		if m, _ := filepath.Glob(glob); glob != "" && len(m) == 0 {
			slog.Warn("no file matches", "key", key, "glob", glob)
		}
	}
	if j.Init != "" {
		if _, err := trainer.ModelPath(j.Init); err != nil {
			slog.Warn("init: not readable here", "err", err)
		}
	}
	if j.Tokenizer != "" && !tokenizer.IsDir(j.Tokenizer) {
		slog.Warn("tokenizer: not a tokenizer directory here", "dir", j.Tokenizer)
	}
}
