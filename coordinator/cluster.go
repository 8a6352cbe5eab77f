package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ringtrain/ringtrain/job"
)

// DefaultPrefix is the etcd key prefix of a cluster. Every worker under one
// prefix joins the job whose coordinator holds that prefix's election.
const DefaultPrefix = "/ringtrain"

// Keys under a cluster prefix:
//
//	PREFIX/members/NAME   a worker's registration (JSON Member), with the worker's lease
//	PREFIX/election/…     the coordinators' election (go.etcd.io/etcd/client/v3/concurrency)
//	PREFIX/generation     the current generation (JSON Generation), written by the leader only, with its lease
//	PREFIX/generation-id  the newest generation ID (decimal), kept across coordinators
type Keys struct{ Prefix string }

// Members is the prefix of the worker registrations.
func (k Keys) Members() string { return path.Join(k.Prefix, "members") + "/" }

// Member is one worker's registration key.
func (k Keys) Member(name string) string { return k.Members() + name }

// Election is the coordinators' election prefix.
func (k Keys) Election() string { return path.Join(k.Prefix, "election") }

// Generation is the key of the current generation. It carries the
// leader's lease: when the coordinator goes, so does its generation.
func (k Keys) Generation() string { return path.Join(k.Prefix, "generation") }

// GenerationID is the key of the newest generation ID ever published (no
// lease), so that IDs keep growing across coordinators.
func (k Keys) GenerationID() string { return path.Join(k.Prefix, "generation-id") }

// Generation is what the coordinator publishes for the workers: the job,
// the ordered ring of ranks, and where training starts. A worker that is a
// member trains it; a newer generation replaces it (the workers abandon the
// old one and restart from its Resume checkpoint).
type Generation struct {
	ID          int64          `json:"id"`
	Job         *job.Job       `json:"job"`
	JobFile     string         `json:"job_file"`
	JobText     string         `json:"job_text"` // the job file as given, for state.json
	RunDir      string         `json:"run_dir"`
	Coordinator string         `json:"coordinator"` // gRPC address for reports
	Members     []RankedMember `json:"members"`     // by rank
	StartStep   int            `json:"start_step"`  // steps completed at start
	Resume      string         `json:"resume"`      // checkpoint dir to restore from; "" for a fresh start
	Done        bool           `json:"done"`        // the job is over: workers go idle
	Failed      string         `json:"failed,omitempty"`
}

// Rank returns the rank of the named worker, or −1.
func (g *Generation) Rank(name string) int {
	for _, m := range g.Members {
		if m.Name == name {
			return m.Rank
		}
	}
	return -1
}

// Addresses returns the members' addresses by rank.
func (g *Generation) Addresses() []string {
	a := make([]string, len(g.Members))
	for i, m := range g.Members {
		a[i] = m.Address
	}
	return a
}

// CheckpointDir is the directory of the checkpoint after step completed
// steps (spec section 6).
func CheckpointDir(runDir string, step int) string {
	return filepath.Join(runDir, "checkpoints", fmt.Sprintf("step_%08d", step))
}

// ReadGeneration returns the current generation, or nil if none was ever
// published, and the revision of the read.
func ReadGeneration(ctx context.Context, cli *clientv3.Client, k Keys) (*Generation, int64, error) {
	resp, err := cli.Get(ctx, k.Generation())
	if err != nil {
		return nil, 0, fmt.Errorf("read generation: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, resp.Header.Revision, nil
	}
	var g Generation
	if err := json.Unmarshal(resp.Kvs[0].Value, &g); err != nil {
		return nil, 0, fmt.Errorf("decode generation %s: %w", k.Generation(), err)
	}
	return &g, resp.Header.Revision, nil
}

// LastGenerationID returns the newest generation ID ever published, or 0.
func LastGenerationID(ctx context.Context, cli *clientv3.Client, k Keys) (int64, error) {
	resp, err := cli.Get(ctx, k.GenerationID())
	if err != nil {
		return 0, fmt.Errorf("read generation id: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	id, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("generation id %s=%q: %w", k.GenerationID(), resp.Kvs[0].Value, err)
	}
	return id, nil
}

// ErrBadName rejects a worker name that cannot be an etcd key segment.
var ErrBadName = errors.New("bad worker name")

// CheckName checks a worker name.
func CheckName(name string) error {
	if name == "" || strings.ContainsAny(name, "/ \t\n") {
		return fmt.Errorf("%w %q: want a non-empty name without '/' or spaces", ErrBadName, name)
	}
	return nil
}

// registration is a member with the revision that created its key, to keep
// the registration order.
type registration struct {
	Member
	rev int64
}

// membersOf sorts registrations by creation revision.
func membersOf(regs map[string]registration) []Member {
	list := make([]registration, 0, len(regs))
	for _, r := range regs {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].rev != list[j].rev {
			return list[i].rev < list[j].rev
		}
		return list[i].Name < list[j].Name
	})
	ms := make([]Member, len(list))
	for i, r := range list {
		ms[i] = r.Member
	}
	return ms
}

// WatchMembers sends the list of registered workers (in registration order)
// on every change until ctx ends; only the newest list is kept if the
// receiver is slow. It returns the error that ended the watch.
func WatchMembers(ctx context.Context, cli *clientv3.Client, k Keys, out chan []Member) error {
	resp, err := cli.Get(ctx, k.Members(), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("list members: %w", err)
	}
	regs := map[string]registration{}
	for _, kv := range resp.Kvs {
		var m Member
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			continue
		}
		regs[string(kv.Key)] = registration{m, kv.CreateRevision}
	}
	send := func() {
		ms := membersOf(regs)
		for {
			select {
			case out <- ms:
				return
			case <-ctx.Done():
				return
			default:
				select { // drop the older, unread list
				case <-out:
				default:
				}
			}
		}
	}
	send()
	wch := cli.Watch(clientv3.WithRequireLeader(ctx), k.Members(), clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("watch members: %w", err)
		}
		for _, ev := range wr.Events {
			key := string(ev.Kv.Key)
			if ev.Type == clientv3.EventTypeDelete {
				delete(regs, key)
				continue
			}
			var m Member
			if err := json.Unmarshal(ev.Kv.Value, &m); err != nil {
				continue
			}
			regs[key] = registration{m, ev.Kv.CreateRevision}
		}
		send()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("watch members: channel closed")
}
