package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/runmetrics"
	"github.com/ringtrain/ringtrain/runplot"
)

func newPlotCmd() *cobra.Command {
	var f struct {
		run, out, title string
		width, height   int
	}
	cmd := &cobra.Command{
		Use:   "plot",
		Short: "Plot a run's loss, learning rate and tokens/s against step",
		Long: `Reads RUN/metrics.jsonl and draws three panels against step: train and val
loss, learning rate, tokens/s, with dashed vertical lines where the job's
membership changed (a generation event, or the world size changing). The
format follows --out's extension: .png or .svg. Works on a running job too
(a half-written last line is left out).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.run == "" || f.out == "" {
				return errors.New("--run and --out: required")
			}
			format, err := runplot.FormatOf(f.out)
			if err != nil {
				return fmt.Errorf("--out %w", err)
			}
			path := filepath.Join(f.run, "metrics.jsonl")
			l, err := runmetrics.ReadFile(path)
			if err != nil {
				return err
			}
			title := f.title
			if title == "" {
				title = filepath.Base(filepath.Clean(f.run))
			}
			fig, err := runplot.New(l, title)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			var b bytes.Buffer
			if err := fig.Render(&b, format, f.width, f.height); err != nil {
				return err
			}
			if err := os.WriteFile(f.out, b.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d steps, %d evals, %d generation changes\n",
				f.out, len(fig.TrainLoss), len(fig.ValLoss), len(fig.Changes))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.run, "run", "", "run `DIR` (with metrics.jsonl; required)")
	fl.StringVar(&f.out, "out", "", "output `FILE`, .png or .svg (required)")
	fl.StringVar(&f.title, "title", "", "title (default: the run dir's name)")
	fl.IntVar(&f.width, "width", 1200, "width in pixels (SVG: at 96 per inch)")
	fl.IntVar(&f.height, "height", 900, "height in pixels")
	return cmd
}

func init() { rootCmd.AddCommand(newPlotCmd()) }
