package kernels

// Packing copies a block of op(A) or op(B) into the order the micro-kernel
// reads it: micro-panels of w rows of op(A) (or w columns of op(B)), each
// stored k-major, dst[p·w + r], zero-padded to w. Transposes are absorbed
// here: a stored matrix is either read along k (transposing copy) or across
// (contiguous copy).

// packA packs rows [ic, ic+mc) × k range [pc, pc+kc) of alpha·op(A) into
// panels of mr rows.
func packA(dst []float32, g *gemmArgs, ic, mc, pc, kc, mr int) {
	start := 0
	if g.transA {
		// All full panels in one pass over the rows of A.
		start = packRowsAsm(dst, mr, g.a[pc*g.lda+ic:], g.lda, mc, kc, g.alpha)
	}
	for ir := start; ir < mc; ir += mr {
		rows := min(mr, mc-ir)
		d := dst[ir*kc : (ir+mr)*kc]
		if g.transA {
			// op(A)[i,p] = a[p·lda + i]
			packAcross(d, mr, g.a[pc*g.lda+ic+ir:], g.lda, rows, kc, g.alpha)
		} else {
			// op(A)[i,p] = a[i·lda + p]
			packAlong(d, mr, g.a[(ic+ir)*g.lda+pc:], g.lda, rows, kc, g.alpha)
		}
	}
}

// packB packs k range [pc, pc+kc) × columns [jc, jc+nc) of op(B) into
// panels of nr columns.
func packB(dst []float32, g *gemmArgs, pc, kc, jc, nc, nr int) {
	if g.transB {
		// op(B)[p,j] = b[j·ldb + p]
		for jr := 0; jr < nc; jr += nr {
			cols := min(nr, nc-jr)
			packAlong(dst[jr*kc:(jr+nr)*kc], nr, g.b[(jc+jr)*g.ldb+pc:], g.ldb, cols, kc, 1)
		}
		return
	}
	// op(B)[p,j] = b[p·ldb + j]: full panels in one pass over the rows.
	start := packRowsAsm(dst, nr, g.b[pc*g.ldb+jc:], g.ldb, nc, kc, 1)
	if start > 0 || packAcrossAsm(dst[:nr*kc], nr, g.b[pc*g.ldb+jc:], g.ldb, min(nr, nc), kc, 1) {
		if start == 0 {
			start = nr
		}
		for jr := start; jr < nc; jr += nr {
			packAcrossAsm(dst[jr*kc:(jr+nr)*kc], nr, g.b[pc*g.ldb+jc+jr:], g.ldb, min(nr, nc-jr), kc, 1)
		}
		return
	}
	// In Go, walk k outside so each row of B streams.
	full := nc / nr * nr
	for p := 0; p < kc; p++ {
		row := g.b[(pc+p)*g.ldb+jc:]
		row = row[:nc]
		jr := 0
		switch nr {
		case 16:
			for ; jr < full; jr += 16 {
				*(*[16]float32)(dst[jr*kc+p*16:]) = *(*[16]float32)(row[jr:])
			}
		case 32:
			for ; jr < full; jr += 32 {
				*(*[32]float32)(dst[jr*kc+p*32:]) = *(*[32]float32)(row[jr:])
			}
		default:
			for ; jr < full; jr += nr {
				copy(dst[jr*kc+p*nr:jr*kc+p*nr+nr], row[jr:jr+nr])
			}
		}
		if jr < nc {
			d := dst[jr*kc+p*nr : jr*kc+p*nr+nr]
			n := copy(d, row[jr:])
			clear(d[n:])
		}
	}
}

// packAlong packs a matrix stored with k along its rows:
//
//	for p < kc, r < w: dst[p·w + r] = scale·src[r·ld + p] if r < rows, else 0
func packAlong(dst []float32, w int, src []float32, ld, rows, kc int, scale float32) {
	if packAlongAsm(dst, w, src, ld, rows, kc, scale) {
		return
	}
	packAlongGo(dst, w, src, ld, rows, kc, scale)
}

// packAlongGo is packAlong in Go.
func packAlongGo(dst []float32, w int, src []float32, ld, rows, kc int, scale float32) {
	dst = dst[:kc*w]
	if rows < w {
		clear(dst)
	}
	p := 0
	for ; p+8 <= kc; p += 8 {
		d := dst[p*w : (p+8)*w]
		for r := 0; r < rows; r++ {
			s := (*[8]float32)(src[r*ld+p:])
			d[r] = scale * s[0]
			d[w+r] = scale * s[1]
			d[2*w+r] = scale * s[2]
			d[3*w+r] = scale * s[3]
			d[4*w+r] = scale * s[4]
			d[5*w+r] = scale * s[5]
			d[6*w+r] = scale * s[6]
			d[7*w+r] = scale * s[7]
		}
	}
	for ; p < kc; p++ {
		d := dst[p*w : p*w+w]
		for r := 0; r < rows; r++ {
			d[r] = scale * src[r*ld+p]
		}
	}
}

// packAcross packs a matrix stored with k down its columns:
//
//	for p < kc, r < w: dst[p·w + r] = scale·src[p·ld + r] if r < rows, else 0
func packAcross(dst []float32, w int, src []float32, ld, rows, kc int, scale float32) {
	if packAcrossAsm(dst, w, src, ld, rows, kc, scale) {
		return
	}
	packAcrossGo(dst, w, src, ld, rows, kc, scale)
}

// packAcrossGo is packAcross in Go.
func packAcrossGo(dst []float32, w int, src []float32, ld, rows, kc int, scale float32) {
	dst = dst[:kc*w]
	for p := 0; p < kc; p++ {
		d := dst[p*w : p*w+w]
		s := src[p*ld : p*ld+rows]
		for r, v := range s {
			d[r] = scale * v
		}
		clear(d[rows:])
	}
}
