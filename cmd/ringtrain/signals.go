package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// stopSignals turns SIGINT and SIGTERM into two stages: the first closes
// the returned channel (a graceful stop: finish the step in flight,
// checkpoint or leave, exit 0), the second cancels the returned context
// (stop now). Call release when done.
func stopSignals(parent context.Context, what string) (ctx context.Context, graceful <-chan struct{}, release func()) {
	ctx, cancel := context.WithCancel(parent)
	soft := make(chan struct{})
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case s := <-sig:
				n++
				if n == 1 {
					slog.Info("stopping gracefully (signal again to stop at once)", "signal", s.String(), "what", what)
					close(soft)
					continue
				}
				slog.Warn("stopping at once", "signal", s.String())
				cancel()
			case <-done:
				return
			}
		}
	}()
	return ctx, soft, func() {
		signal.Stop(sig)
		close(done)
		cancel()
	}
}
