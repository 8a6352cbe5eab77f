package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// AttemptTimeout bounds one etcd request of the retrying helpers, so that
// an unreachable etcd is reported within seconds instead of blocking.
const AttemptTimeout = 3 * time.Second

// Backoff is the pause before the n-th retry (n ≥ 1): 200 ms doubling to 5 s.
func Backoff(n int) time.Duration {
	d := 200 * time.Millisecond << min(n-1, 5)
	return min(d, 5*time.Second)
}

// Final marks an error that Retry returns at once: etcd answered, and
// asking again would get the same answer (a transaction whose condition
// failed, say).
func Final(err error) error { return finalError{err} }

type finalError struct{ error }

func (e finalError) Unwrap() error { return e.error }

// Retry calls f with a fresh per-attempt timeout until it succeeds, fails
// with an error marked Final (returned unwrapped) or ctx ends. Failures are
// logged naming what was tried and the etcd endpoints: the first at once,
// then every 30 s while they go on.
func Retry(ctx context.Context, cli *clientv3.Client, log *slog.Logger, what string, f func(ctx context.Context) error) error {
	var lastLog time.Time
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, AttemptTimeout)
		err := f(actx)
		cancel()
		if err == nil {
			if n > 1 {
				log.Info("etcd reachable again", "what", what, "endpoints", endpoints(cli), "attempts", n)
			}
			return nil
		}
		if fe := (finalError{}); errors.As(err, &fe) {
			return fe.error
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(lastLog) > 30*time.Second {
			log.Warn("waiting for etcd", "what", what, "endpoints", endpoints(cli), "err", err)
			lastLog = time.Now()
		}
		select {
		case <-time.After(Backoff(n)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func endpoints(cli *clientv3.Client) string {
	if cli == nil {
		return ""
	}
	return strings.Join(cli.Endpoints(), ",")
}

// Latest holds the newest value of something watched and tells waiters
// when it changes; older values are dropped. The zero value holds the
// zero T; methods are safe for concurrent use.
type Latest[T any] struct {
	mu      sync.Mutex
	v       T
	ver     uint64
	changed chan struct{}
}

// Set stores v and wakes the waiters.
func (l *Latest[T]) Set(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.v = v
	l.ver++
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// Get returns the value, its version (0 before the first Set) and a
// channel closed at the next Set.
func (l *Latest[T]) Get() (T, uint64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.v, l.ver, l.changed
}

// WatchKey follows one key until ctx ends, calling put with its value on
// every change (and first with the current value) and del when it is
// deleted or absent. It survives etcd outages: after any error it reads
// the key again and resumes watching.
func WatchKey(ctx context.Context, cli *clientv3.Client, log *slog.Logger, key string, put func(value []byte), del func()) error {
	for {
		var rev int64
		err := Retry(ctx, cli, log, "read "+key, func(ctx context.Context) error {
			resp, err := cli.Get(ctx, key)
			if err != nil {
				return err
			}
			rev = resp.Header.Revision
			if len(resp.Kvs) == 0 {
				del()
			} else {
				put(resp.Kvs[0].Value)
			}
			return nil
		})
		if err != nil {
			return err
		}
		wctx, cancel := context.WithCancel(ctx)
		for wr := range cli.Watch(clientv3.WithRequireLeader(wctx), key, clientv3.WithRev(rev+1)) {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					del()
				} else {
					put(ev.Kv.Value)
				}
			}
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select { // the watch broke (etcd away, no leader): read again
		case <-time.After(Backoff(1)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WatchJSON is WatchKey decoding JSON values into l (a deleted or absent
// key, or a value that does not decode, stores nil).
func WatchJSON[T any](ctx context.Context, cli *clientv3.Client, log *slog.Logger, key string, l *Latest[*T]) error {
	return WatchKey(ctx, cli, log, key, func(b []byte) {
		v := new(T)
		if err := json.Unmarshal(b, v); err != nil {
			log.Warn("bad value in etcd", "key", key, "err", err)
			l.Set(nil)
			return
		}
		l.Set(v)
	}, func() { l.Set(nil) })
}

// WatchMembers follows the worker registrations until ctx ends, storing in
// l the list of members in registration order (oldest key first) on every
// change. Like WatchKey it survives etcd outages.
func WatchMembers(ctx context.Context, cli *clientv3.Client, log *slog.Logger, k Keys, l *Latest[[]Member]) error {
	type reg struct {
		m   Member
		rev int64
	}
	publish := func(regs map[string]reg) {
		list := make([]reg, 0, len(regs))
		for _, r := range regs {
			list = append(list, r)
		}
		sort.Slice(list, func(i, j int) bool {
			if list[i].rev != list[j].rev {
				return list[i].rev < list[j].rev
			}
			return list[i].m.Name < list[j].m.Name
		})
		ms := make([]Member, len(list))
		for i, r := range list {
			ms[i] = r.m
		}
		l.Set(ms)
	}
	decode := func(key string, v []byte) (Member, bool) {
		var m Member
		if err := json.Unmarshal(v, &m); err != nil || m.Name != strings.TrimPrefix(key, k.Members()) {
			log.Warn("bad worker registration in etcd", "key", key, "err", err)
			return Member{}, false
		}
		return m, true
	}
	for {
		regs := map[string]reg{}
		var rev int64
		err := Retry(ctx, cli, log, "list workers", func(ctx context.Context) error {
			resp, err := cli.Get(ctx, k.Members(), clientv3.WithPrefix())
			if err != nil {
				return err
			}
			rev = resp.Header.Revision
			for _, kv := range resp.Kvs {
				if m, ok := decode(string(kv.Key), kv.Value); ok {
					regs[string(kv.Key)] = reg{m, kv.CreateRevision}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		publish(regs)
		wctx, cancel := context.WithCancel(ctx)
		for wr := range cli.Watch(clientv3.WithRequireLeader(wctx), k.Members(), clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				key := string(ev.Kv.Key)
				if ev.Type == clientv3.EventTypeDelete {
					delete(regs, key)
				} else if m, ok := decode(key, ev.Kv.Value); ok {
					regs[key] = reg{m, ev.Kv.CreateRevision}
				}
			}
			publish(regs)
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-time.After(Backoff(1)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ReadGenerationID returns the newest generation id ever published, or 0.
func ReadGenerationID(ctx context.Context, cli *clientv3.Client, k Keys) (int64, error) {
	resp, err := cli.Get(ctx, k.GenerationID())
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", k.GenerationID(), err)
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

// ReadGeneration returns the current generation, or nil if there is none.
func ReadGeneration(ctx context.Context, cli *clientv3.Client, k Keys) (*Generation, error) {
	resp, err := cli.Get(ctx, k.Generation())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.Generation(), err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	var g Generation
	if err := json.Unmarshal(resp.Kvs[0].Value, &g); err != nil {
		return nil, fmt.Errorf("decode %s: %w", k.Generation(), err)
	}
	return &g, nil
}

// ErrReplaced: another process registered this worker's name.
var ErrReplaced = errors.New("worker name registered by another process")

// Registration keeps a worker registered: its key bound to a lease of its
// own session, re-created when the session is lost (an etcd outage, a
// pause longer than the lease), until ctx ends.
type Registration struct {
	cli *clientv3.Client
	k   Keys
	ttl time.Duration
	log *slog.Logger
	// NewIncarnation returns a fresh incarnation.
	newInc func() uint64

	mu     sync.Mutex
	member Member
	// Current holds the registered member (nil while not registered).
	Current Latest[*Member]
}

// NewRegistration prepares the registration of m (whose Incarnation is set
// here) with the lease TTL ttl.
func NewRegistration(cli *clientv3.Client, k Keys, m Member, ttl time.Duration, newInc func() uint64, log *slog.Logger) *Registration {
	m.Incarnation = newInc()
	return &Registration{cli: cli, k: k, ttl: ttl, log: log, newInc: newInc, member: m}
}

// Member returns the member as registered last.
func (r *Registration) Member() Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.member
}

// Run registers and keeps the registration until ctx ends (it then
// returns ctx's error, leaving the key to its lease) or another process
// takes the name over (ErrReplaced). A registration that vanished while
// this process was away (its lease expired) comes back with a new
// incarnation; one that survived (etcd was away, the lease not yet
// expired) is taken over with the same incarnation. A name registered by
// another incarnation at the first registration is taken over at once: a
// restarted worker replaces its dead predecessor without waiting for its
// lease.
func (r *Registration) Run(ctx context.Context) error {
	first := true
	for {
		var lease clientv3.LeaseID
		var leaseDone <-chan *clientv3.LeaseKeepAliveResponse
		err := Retry(ctx, r.cli, r.log, "register "+r.member.Name, func(actx context.Context) error {
			g, err := r.cli.Grant(actx, int64(max(r.ttl.Seconds(), 1)))
			if err != nil {
				return err
			}
			lease = g.ID
			return nil
		})
		if err != nil {
			return err
		}
		key := r.k.Member(r.member.Name)
		var replaced bool
		err = Retry(ctx, r.cli, r.log, "register "+r.member.Name, func(actx context.Context) error {
			resp, err := r.cli.Get(actx, key)
			if err != nil {
				return err
			}
			r.mu.Lock()
			m := r.member
			r.mu.Unlock()
			var old *Member
			if len(resp.Kvs) == 1 {
				old = new(Member)
				if json.Unmarshal(resp.Kvs[0].Value, old) != nil {
					old = nil
				}
			}
			switch {
			case old != nil && old.Incarnation == m.Incarnation: // still ours: rebind to the new lease
			case old != nil && !first:
				replaced = true
				return nil
			case old == nil && !first: // our registration vanished: we are a new member now
				m.Incarnation = r.newInc()
			}
			val, _ := json.Marshal(m)
			cmp := clientv3.Compare(clientv3.ModRevision(key), "=", 0)
			if len(resp.Kvs) == 1 {
				cmp = clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)
			}
			tr, err := r.cli.Txn(actx).If(cmp).Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).Commit()
			if err != nil {
				return err
			}
			if !tr.Succeeded {
				return errors.New("registration changed meanwhile")
			}
			r.mu.Lock()
			r.member = m
			r.mu.Unlock()
			return nil
		})
		if err != nil {
			return err
		}
		if replaced {
			r.Current.Set(nil)
			return fmt.Errorf("%w: %s", ErrReplaced, key)
		}
		m := r.Member()
		r.Current.Set(&m)
		if first {
			r.log.Info("registered", "key", key, "address", m.Address, "incarnation", m.Incarnation, "ttl", r.ttl)
		} else {
			r.log.Info("registered again", "key", key, "incarnation", m.Incarnation)
		}
		first = false
		kctx, kcancel := context.WithCancel(ctx)
		leaseDone, err = r.cli.KeepAlive(kctx, lease)
		if err != nil {
			kcancel()
			continue
		}
		// Follow our key: someone else's incarnation in it means we were replaced.
		gone := make(chan bool, 1)
		go func() {
			for wr := range r.cli.Watch(kctx, key) {
				for _, ev := range wr.Events {
					var cur Member
					if ev.Type == clientv3.EventTypeDelete {
						select {
						case gone <- false:
						default:
						}
						return
					}
					if json.Unmarshal(ev.Kv.Value, &cur) == nil && cur.Incarnation != m.Incarnation {
						select {
						case gone <- true:
						default:
						}
						return
					}
				}
			}
		}()
	alive:
		for {
			select {
			case <-ctx.Done():
				kcancel()
				return ctx.Err()
			case other := <-gone:
				kcancel()
				if other {
					r.Current.Set(nil)
					return fmt.Errorf("%w: %s", ErrReplaced, key)
				}
				r.log.Warn("registration deleted; registering again", "key", key)
				break alive
			case _, ok := <-leaseDone:
				if !ok {
					kcancel()
					r.log.Warn("registration lease lost (etcd unreachable or this process paused); registering again", "key", key)
					break alive
				}
			}
		}
		r.Current.Set(nil)
	}
}

// Deregister deletes the registration (if it is still this incarnation's),
// for a graceful leave.
func (r *Registration) Deregister(ctx context.Context) error {
	m := r.Member()
	key := r.k.Member(m.Name)
	ctx, cancel := context.WithTimeout(ctx, AttemptTimeout)
	defer cancel()
	resp, err := r.cli.Get(ctx, key)
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	var cur Member
	if json.Unmarshal(resp.Kvs[0].Value, &cur) != nil || cur.Incarnation != m.Incarnation {
		return nil
	}
	_, err = r.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)).
		Then(clientv3.OpDelete(key)).Commit()
	return err
}

// ReadJSON returns the JSON value at key decoded into a T, or nil if the
// key does not exist.
func ReadJSON[T any](ctx context.Context, cli *clientv3.Client, key string) (*T, error) {
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal(resp.Kvs[0].Value, v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	return v, nil
}
