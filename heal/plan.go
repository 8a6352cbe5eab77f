package heal

import (
	"fmt"
	"strings"

	"github.com/ringtrain/ringtrain/cluster"
)

// Peer is what the opening handshake of a generation learns of one rank:
// the version of the state it holds and the hash of that state.
type Peer struct {
	Version cluster.Version
	Hash    uint32
}

// Plan is how the ranks of a new generation come to hold one state. Every
// rank computes the same plan from the same handshake.
type Plan struct {
	// Target is the version every rank holds once the plan is carried out.
	Target cluster.Version
	// Source is the rank whose state the others take.
	Source int
	// LoadCheckpoint: Source first loads the generation's checkpoint
	// (no rank holds a state that new).
	LoadCheckpoint bool
	// Heal lists the ranks that fetch the state from Source, in rank order.
	Heal []int
}

// Decide plans the start of a generation: the newest state any rank holds
// wins (at equal versions, the lowest rank's); the checkpoint only if it
// is newer than all of them. Ranks whose version or hash differ from the
// source's fetch its state. So no rank rolls back while another holds a
// newer state, and no two ranks continue from different states.
func Decide(peers []Peer, checkpoint *cluster.Version) Plan {
	p := Plan{Source: 0}
	for r, pe := range peers {
		if r == 0 || p.Target.Less(pe.Version) {
			p.Target, p.Source = pe.Version, r
		}
	}
	if checkpoint != nil && (len(peers) == 0 || p.Target.Less(*checkpoint)) {
		p.Target, p.Source, p.LoadCheckpoint = *checkpoint, 0, true
		for r := 1; r < len(peers); r++ {
			p.Heal = append(p.Heal, r)
		}
		return p
	}
	src := peers[p.Source]
	for r, pe := range peers {
		if pe != src {
			p.Heal = append(p.Heal, r)
		}
	}
	return p
}

func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "continue from %v of rank %d", p.Target, p.Source)
	if p.LoadCheckpoint {
		b.WriteString(" (loaded from the checkpoint)")
	}
	if len(p.Heal) > 0 {
		fmt.Fprintf(&b, "; ranks %v fetch it", p.Heal)
	}
	return b.String()
}

// Encode writes rank's handshake entry into a vector of 3 float64 per rank
// (every other entry zero), so that an all-reduce sum of the ranks'
// vectors gathers all entries. Steps and generations stay below 2⁵³, so
// the float64 sums are exact.
func Encode(buf []float64, rank int, p Peer) {
	clear(buf)
	buf[3*rank] = float64(p.Version.Step)
	buf[3*rank+1] = float64(p.Version.Generation)
	buf[3*rank+2] = float64(p.Hash)
}

// DecodeAll reads every rank's entry back.
func DecodeAll(buf []float64) []Peer {
	out := make([]Peer, len(buf)/3)
	for r := range out {
		out[r] = Peer{
			Version: cluster.Version{Step: int64(buf[3*r]), Generation: int64(buf[3*r+1])},
			Hash:    uint32(buf[3*r+2]),
		}
	}
	return out
}
