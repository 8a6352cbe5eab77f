// Command ringtrain is the single binary of the ringtrain cluster: the
// embedded local cluster, etcd, coordinator, worker, status tools, the data
// path (tokenizer, prepare), evaluation, generation and benchmarks.
//
// Each subcommand lives in its own file and registers itself on rootCmd in
// an init function.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

var logLevel string

var rootCmd = &cobra.Command{
	Use:           "ringtrain",
	Short:         "Distributed data-parallel training of transformer language models",
	SilenceUsage:  true,
	SilenceErrors: true,
	PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
			return fmt.Errorf("--log-level %q: %w", logLevel, err)
		}
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
		return nil
	},
}

func init() {
	rootCmd.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "ringtrain: %v\n", err)
		os.Exit(1)
	}
}
