package main

import "github.com/spf13/cobra"

// benchCmd is the parent of the benchmark commands (bench train,
// bench allreduce); each registers itself on it in its own file.
var benchCmd = &cobra.Command{
	Use:   "bench",
	Short: "Benchmarks: training-step throughput and all-reduce bandwidth",
}

func init() {
	rootCmd.AddCommand(benchCmd)
}
