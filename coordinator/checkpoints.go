package coordinator

import (
	"errors"

	"github.com/ringtrain/ringtrain/checkpoint"
)

// FSCheckpoints is the checkpoint store of package checkpoint: committed
// directories RUN/checkpoints/step_NNNNNNNN with a COMMIT marker.
type FSCheckpoints struct{}

var _ Checkpoints = FSCheckpoints{}

// Latest implements Checkpoints.
func (FSCheckpoints) Latest(runDir string) (string, int, error) {
	dir, step, err := checkpoint.Latest(runDir)
	if errors.Is(err, checkpoint.ErrNoCheckpoint) {
		return "", -1, nil
	}
	if err != nil {
		return "", -1, err
	}
	return dir, int(step), nil
}

// Commit implements Checkpoints.
func (FSCheckpoints) Commit(dir string) error { return checkpoint.Commit(dir) }

// Prune implements Checkpoints.
func (FSCheckpoints) Prune(runDir string, keep int) error { return checkpoint.Prune(runDir, keep) }
