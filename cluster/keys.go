package cluster

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// DefaultPrefix is the etcd key prefix of a cluster. Every worker under one
// prefix joins the job whose coordinator leads that prefix's election.
const DefaultPrefix = "/ringtrain"

// Keys builds the keys under a cluster prefix (see the package doc).
type Keys struct{ Prefix string }

// Job is the key of the job record.
func (k Keys) Job() string { return path.Join(k.Prefix, "job") }

// Coordinator is the key of the leader's address.
func (k Keys) Coordinator() string { return path.Join(k.Prefix, "coordinator") }

// Result is the key of the final state of the last job that ended.
func (k Keys) Result() string { return path.Join(k.Prefix, "result") }

// Election is the coordinators' election prefix.
func (k Keys) Election() string { return path.Join(k.Prefix, "election") }

// Members is the prefix of the worker registrations.
func (k Keys) Members() string { return path.Join(k.Prefix, "members") + "/" }

// Member is one worker's registration key.
func (k Keys) Member(name string) string { return k.Members() + name }

// Generation is the key of the current generation.
func (k Keys) Generation() string { return path.Join(k.Prefix, "generation") }

// GenerationID is the key of the newest generation id ever published.
func (k Keys) GenerationID() string { return path.Join(k.Prefix, "generation-id") }

// ErrBadName rejects a worker name that cannot be an etcd key segment.
var ErrBadName = errors.New("bad worker name")

// CheckName checks a worker name.
func CheckName(name string) error {
	if name == "" || strings.ContainsAny(name, "/ \t\n") || len(name) > 200 {
		return fmt.Errorf("%w %q: want a non-empty name of at most 200 bytes without '/' or spaces", ErrBadName, name)
	}
	return nil
}
