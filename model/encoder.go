package model

// encoderForward looks up token embeddings.
//
//	out (BT, C), inp (BT) token ids, wte (V, C)
func encoderForward(out []float32, inp []int32, wte []float32, BT, C int) {
	for i := 0; i < BT; i++ {
		t := int(inp[i])
		copy(out[i*C:(i+1)*C], wte[t*C:(t+1)*C])
	}
}

type encoderArgs struct {
	dwte, dout []float32
	inp        []int32
	BT, C      int
}

var encoderBwdJobs rangeJobs[encoderArgs]

// encoderBackward accumulates dout into the rows of the used tokens.
// It splits the work over columns, so repeated tokens never race.
//
//	dwte (V, C), dout (BT, C), inp (BT)
func encoderBackward(dwte, dout []float32, inp []int32, BT, C int) {
	encoderBwdJobs.run(C, encoderArgs{dwte: dwte, dout: dout, inp: inp, BT: BT, C: C}, encoderBackwardCols)
}

func encoderBackwardCols(a *encoderArgs, c0, c1 int) {
	C := a.C
	for i := 0; i < a.BT; i++ {
		t := int(a.inp[i])
		d := a.dwte[t*C+c0 : t*C+c1]
		s := a.dout[i*C+c0 : i*C+c1]
		for j := range d {
			d[j] += s[j]
		}
	}
}
