//go:build amd64 && !noasm

#include "textflag.h"

// func add32AVX2(dst, src *float32, n int)
TEXT ·add32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

add32loop32:
	CMPQ    CX, $32
	JL      add32loop8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VADDPS  (DI), Y0, Y0
	VADDPS  32(DI), Y1, Y1
	VADDPS  64(DI), Y2, Y2
	VADDPS  96(DI), Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, SI
	ADDQ    $128, DI
	SUBQ    $32, CX
	JMP     add32loop32

add32loop8:
	CMPQ    CX, $8
	JL      add32tail
	VMOVUPS (SI), Y0
	VADDPS  (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     add32loop8

add32tail:
	TESTQ  CX, CX
	JE     add32done
	VMOVSS (SI), X0
	VADDSS (DI), X0, X0
	VMOVSS X0, (DI)
	ADDQ   $4, SI
	ADDQ   $4, DI
	DECQ   CX
	JMP    add32tail

add32done:
	VZEROUPPER
	RET

// func addScale32AVX2(dst, src *float32, n int, scale float32)
TEXT ·addScale32AVX2(SB), NOSPLIT, $0-28
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS scale+24(FP), Y4

scaleloop32:
	CMPQ    CX, $32
	JL      scaleloop8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VADDPS  (DI), Y0, Y0
	VADDPS  32(DI), Y1, Y1
	VADDPS  64(DI), Y2, Y2
	VADDPS  96(DI), Y3, Y3
	VMULPS  Y4, Y0, Y0
	VMULPS  Y4, Y1, Y1
	VMULPS  Y4, Y2, Y2
	VMULPS  Y4, Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, SI
	ADDQ    $128, DI
	SUBQ    $32, CX
	JMP     scaleloop32

scaleloop8:
	CMPQ    CX, $8
	JL      scaletail
	VMOVUPS (SI), Y0
	VADDPS  (DI), Y0, Y0
	VMULPS  Y4, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     scaleloop8

scaletail:
	TESTQ  CX, CX
	JE     scaledone
	VMOVSS (SI), X0
	VADDSS (DI), X0, X0
	VMULSS X4, X0, X0
	VMOVSS X0, (DI)
	ADDQ   $4, SI
	ADDQ   $4, DI
	DECQ   CX
	JMP    scaletail

scaledone:
	VZEROUPPER
	RET

// The bfloat16 kernels of WireBF16. The AVX2 versions round with integer
// operations, the AVX-512 ones with VCVTNEPS2BF16 (AVX512_BF16), which the
// Go assembler does not know: it is written as bytes for fixed registers,
//	VCVTNEPS2BF16 Z0, Y1 = 62 f2 7e 48 72 c8
// Both round as internal/bf16 does (tests compare them with it bit for bit).

// ROUND16 leaves in the upper 16 bits of each lane of r the bfloat16 of v
// (to nearest even; zeros and subnormals to a signed zero; NaN quieted),
// using t and m; Y8–Y14 hold the constants loaded by BF16CONSTS.
#define BF16CONSTS \
	VPBROADCASTD bf16One<>(SB), Y8 \
	VPBROADCASTD bf16Bias<>(SB), Y9 \
	VPBROADCASTD bf16Hi<>(SB), Y10 \
	VPBROADCASTD bf16Abs<>(SB), Y11 \
	VPBROADCASTD bf16Exp<>(SB), Y12 \
	VPBROADCASTD bf16Quiet<>(SB), Y13 \
	VPBROADCASTD bf16Sign<>(SB), Y14 \
	VPXOR        Y15, Y15, Y15

#define ROUND16(v, r, t, m) \
	VPSRLD    $16, v, t \
	VPAND     Y8, t, t \
	VPADDD    Y9, v, r \
	VPADDD    t, r, r \
	VPAND     Y10, r, r \
	VPAND     Y11, v, t \
	VPCMPGTD  Y12, t, m \
	VPOR      Y13, v, t \
	VPAND     Y10, t, t \
	VPBLENDVB m, t, r, r \
	VPAND     Y12, v, t \
	VPCMPEQD  Y15, t, m \
	VPAND     Y14, v, t \
	VPBLENDVB m, t, r, r

DATA bf16One<>+0(SB)/4, $1
GLOBL bf16One<>(SB), RODATA|NOPTR, $4
DATA bf16Bias<>+0(SB)/4, $0x7fff
GLOBL bf16Bias<>(SB), RODATA|NOPTR, $4
DATA bf16Hi<>+0(SB)/4, $0xffff0000
GLOBL bf16Hi<>(SB), RODATA|NOPTR, $4
DATA bf16Abs<>+0(SB)/4, $0x7fffffff
GLOBL bf16Abs<>(SB), RODATA|NOPTR, $4
DATA bf16Exp<>+0(SB)/4, $0x7f800000
GLOBL bf16Exp<>(SB), RODATA|NOPTR, $4
DATA bf16Quiet<>+0(SB)/4, $0x00400000
GLOBL bf16Quiet<>(SB), RODATA|NOPTR, $4
DATA bf16Sign<>+0(SB)/4, $0x80000000
GLOBL bf16Sign<>(SB), RODATA|NOPTR, $4

// func encode16AVX2(dst *uint16, src *float32, n int)
TEXT ·encode16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	BF16CONSTS

enc2loop:
	CMPQ    CX, $16
	JL      enc2done
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	ROUND16(Y0, Y2, Y4, Y5)
	ROUND16(Y1, Y3, Y4, Y5)
	VPSRLD    $16, Y2, Y2
	VPSRLD    $16, Y3, Y3
	VPACKUSDW Y3, Y2, Y2
	VPERMQ    $0xd8, Y2, Y2
	VMOVDQU   Y2, (DI)
	ADDQ      $64, SI
	ADDQ      $32, DI
	SUBQ      $16, CX
	JMP       enc2loop

enc2done:
	VZEROUPPER
	RET

// func decode16AVX2(dst *float32, src *uint16, n int)
TEXT ·decode16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

dec2loop:
	CMPQ      CX, $8
	JL        dec2done
	VPMOVZXWD (SI), Y0
	VPSLLD    $16, Y0, Y0
	VMOVDQU   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JMP       dec2loop

dec2done:
	VZEROUPPER
	RET

// func add16AVX2(dst *float32, src *uint16, n int)
TEXT ·add16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

add2loop:
	CMPQ      CX, $16
	JL        add2done
	VPMOVZXWD (SI), Y0
	VPMOVZXWD 16(SI), Y1
	VPSLLD    $16, Y0, Y0
	VPSLLD    $16, Y1, Y1
	VADDPS    (DI), Y0, Y0
	VADDPS    32(DI), Y1, Y1
	VMOVUPS   Y0, (DI)
	VMOVUPS   Y1, 32(DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JMP       add2loop

add2done:
	VZEROUPPER
	RET

// func addRound16AVX2(dst *float32, src *uint16, n int, scale float32)
TEXT ·addRound16AVX2(SB), NOSPLIT, $0-28
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS scale+24(FP), Y7
	BF16CONSTS

addr2loop:
	CMPQ      CX, $8
	JL        addr2done
	VPMOVZXWD (SI), Y0
	VPSLLD    $16, Y0, Y0
	VADDPS    (DI), Y0, Y0
	VMULPS    Y7, Y0, Y0
	ROUND16(Y0, Y2, Y4, Y5)
	VMOVDQU   Y2, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JMP       addr2loop

addr2done:
	VZEROUPPER
	RET

#define VCVTNEPS2BF16_Z0_Y1 BYTE $0x62; BYTE $0xf2; BYTE $0x7e; BYTE $0x48; BYTE $0x72; BYTE $0xc8

// func encode16AVX512(dst *uint16, src *float32, n int)
TEXT ·encode16AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

enc5loop:
	CMPQ    CX, $16
	JL      enc5done
	VMOVUPS (SI), Z0
	VCVTNEPS2BF16_Z0_Y1
	VMOVDQU Y1, (DI)
	ADDQ    $64, SI
	ADDQ    $32, DI
	SUBQ    $16, CX
	JMP     enc5loop

enc5done:
	VZEROUPPER
	RET

// func addRound16AVX512(dst *float32, src *uint16, n int, scale float32)
TEXT ·addRound16AVX512(SB), NOSPLIT, $0-28
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS scale+24(FP), Z7

addr5loop:
	CMPQ      CX, $16
	JL        addr5done
	VPMOVZXWD (SI), Z0
	VPSLLD    $16, Z0, Z0
	VADDPS    (DI), Z0, Z0
	VMULPS    Z7, Z0, Z0
	VCVTNEPS2BF16_Z0_Y1
	VPMOVZXWD Y1, Z0
	VPSLLD    $16, Z0, Z0
	VMOVUPS   Z0, (DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JMP       addr5loop

addr5done:
	VZEROUPPER
	RET
