package heal

import (
	"fmt"
	"testing"

	"github.com/ringtrain/ringtrain/cluster"
)

func TestDecide(t *testing.T) {
	v := func(step, gen int64) cluster.Version { return cluster.Version{Step: step, Generation: gen} }
	p := func(step, gen int64, hash uint32) Peer { return Peer{Version: v(step, gen), Hash: hash} }
	ck := func(step, gen int64) *cluster.Version { c := v(step, gen); return &c }
	for _, tc := range []struct {
		name  string
		peers []Peer
		ckpt  *cluster.Version
		want  string
	}{
		{"all alike", []Peer{p(7, 2, 9), p(7, 2, 9), p(7, 2, 9)}, ck(4, 1),
			"continue from step 7 (generation 2) of rank 0"},
		{"a rank died after some finished the all-reduce", []Peer{p(5, 1, 3), p(6, 1, 4), p(5, 1, 3)}, nil,
			"continue from step 6 (generation 1) of rank 1; ranks [0 2] fetch it"},
		{"a new member", []Peer{p(40, 3, 1), p(40, 3, 1), p(0, 0, 77)}, ck(30, 2),
			"continue from step 40 (generation 3) of rank 0; ranks [2] fetch it"},
		{"cold start from the checkpoint", []Peer{p(0, 0, 5), p(0, 0, 5), p(0, 0, 5)}, ck(100, 3),
			"continue from step 100 (generation 3) of rank 0 (loaded from the checkpoint); ranks [1 2] fetch it"},
		{"checkpoint as new as a live rank: the live one", []Peer{p(0, 0, 5), p(100, 3, 6)}, ck(100, 3),
			"continue from step 100 (generation 3) of rank 1; ranks [0] fetch it"},
		{"fresh start", []Peer{p(0, 0, 5), p(0, 0, 5)}, nil,
			"continue from step 0 (generation 0) of rank 0"},
		{"a zombie at the same step of an older generation loses", []Peer{p(11, 5, 1), p(11, 6, 2), p(11, 6, 2)}, nil,
			"continue from step 11 (generation 6) of rank 1; ranks [0] fetch it"},
		{"same version, other bits: healed anyway", []Peer{p(3, 1, 1), p(3, 1, 2)}, nil,
			"continue from step 3 (generation 1) of rank 0; ranks [1] fetch it"},
		{"one rank", []Peer{p(9, 4, 1)}, ck(12, 4),
			"continue from step 12 (generation 4) of rank 0 (loaded from the checkpoint)"},
	} {
		if got := Decide(tc.peers, tc.ckpt).String(); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// The handshake vector gathers every rank's entry through a sum.
func TestEncodeDecode(t *testing.T) {
	peers := []Peer{{cluster.Version{Step: 1 << 40, Generation: 7}, 0xffffffff}, {cluster.Version{Step: 3, Generation: 0}, 1}, {}}
	sum := make([]float64, 3*len(peers))
	for r, p := range peers {
		buf := make([]float64, len(sum))
		Encode(buf, r, p)
		for i := range buf {
			sum[i] += buf[i]
		}
	}
	if got := DecodeAll(sum); fmt.Sprint(got) != fmt.Sprint(peers) {
		t.Errorf("decoded %v, want %v", got, peers)
	}
}
