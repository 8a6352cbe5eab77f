package hf

import (
	"strings"

	"github.com/ringtrain/ringtrain/model"
)

// hfNames maps the suffixes of the model's tensor names to Hugging Face
// Llama's (docs/export.md).
var hfNames = strings.NewReplacer(
	"token_embeddings.weight", "model.embed_tokens.weight",
	".ln1.weight", ".input_layernorm.weight",
	".ln2.weight", ".post_attention_layernorm.weight",
	".attn.output_proj.weight", ".self_attn.o_proj.weight",
	".attn.", ".self_attn.",
	".ffn.w1.weight", ".mlp.gate_proj.weight",
	".ffn.w3.weight", ".mlp.up_proj.weight",
	".ffn.w2.weight", ".mlp.down_proj.weight",
	"ln_final.weight", "model.norm.weight",
)

// TensorName returns the Hugging Face name of one of the model's tensors
// (layers.3.ffn.w1.weight → model.layers.3.mlp.gate_proj.weight).
func TensorName(name string) string {
	n := hfNames.Replace(name)
	if strings.HasPrefix(n, "layers.") {
		n = "model." + n
	}
	return n
}

// ropePermuted reports whether the tensor's rows are permuted between the
// two RoPE conventions: q_proj and k_proj.
func ropePermuted(name string) bool {
	return strings.HasSuffix(name, ".attn.q_proj.weight") || strings.HasSuffix(name, ".attn.k_proj.weight")
}

// PermuteToHF reorders the rows of a q or k projection w (d_out = heads·hd
// rows of cols) from the model's RoPE, which rotates interleaved pairs
// (2k, 2k+1) of each head, to Hugging Face's, which rotates halves
// (k, k+hd/2): row h·hd + j·hd/2 + k of dst is row h·hd + 2k + j of src,
// which is torch's w.view(heads, hd/2, 2, cols).transpose(1, 2).reshape(-1, cols).
func PermuteToHF(dst, src []float32, heads, hd, cols int) { permute(dst, src, heads, hd, cols, true) }

// PermuteFromHF is the inverse of PermuteToHF.
func PermuteFromHF(dst, src []float32, heads, hd, cols int) {
	permute(dst, src, heads, hd, cols, false)
}

func permute(dst, src []float32, heads, hd, cols int, toHF bool) {
	half := hd / 2
	for h := range heads {
		for j := range 2 {
			for k := range half {
				hfRow, ourRow := h*hd+j*half+k, h*hd+2*k+j
				d, s := hfRow, ourRow
				if !toHF {
					d, s = ourRow, hfRow
				}
				copy(dst[d*cols:(d+1)*cols], src[s*cols:(s+1)*cols])
			}
		}
	}
}

// toHF returns the model's parameters as Hugging Face tensors, in Layout
// order; q and k are permuted copies, the others alias params.
func toHF(cfg model.Config, params []float32) []model.Tensor {
	ts := model.LayoutTensors(cfg.Layout(), params, "")
	for i, t := range ts {
		if ropePermuted(t.Name) {
			p := make([]float32, len(t.Data))
			PermuteToHF(p, t.Data, cfg.NumHeads, cfg.HeadDim(), cfg.DModel)
			ts[i].Data = p
		}
		ts[i].Name = TensorName(t.Name)
	}
	return ts
}
