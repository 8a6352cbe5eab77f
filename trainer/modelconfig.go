package trainer

import (
	"fmt"

	"github.com/ringtrain/ringtrain/job"
	"github.com/ringtrain/ringtrain/model"
	"github.com/ringtrain/ringtrain/shard"
)

// defaultRopeTheta is RoPE's θ when neither the preset nor the job sets one.
const defaultRopeTheta = 10000

// ModelConfig resolves the job's model section: the preset's shape, with
// the fields given beside it taking precedence, validated, and with a
// vocabulary that fits the uint16 token shards. Errors name the key.
func ModelConfig(m job.Model) (model.Config, error) {
	var out model.Config
	if m.Preset != "" {
		p, err := model.Preset(m.Preset)
		if err != nil {
			return model.Config{}, fmt.Errorf("model.preset: %w", err)
		}
		out = p
	}
	pick := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	pick(&out.VocabSize, m.VocabSize)
	pick(&out.ContextLength, m.ContextLength)
	pick(&out.DModel, m.DModel)
	pick(&out.NumLayers, m.NumLayers)
	pick(&out.NumHeads, m.NumHeads)
	pick(&out.DFF, m.DFF)
	if m.RopeTheta != 0 {
		out.RopeTheta = m.RopeTheta
	}
	if out.RopeTheta == 0 {
		out.RopeTheta = defaultRopeTheta
	}
	if err := out.Validate(); err != nil {
		return model.Config{}, err
	}
	if out.VocabSize > shard.MaxVocab {
		return model.Config{}, fmt.Errorf("model: vocab_size %d does not fit the uint16 token shards (max %d)", out.VocabSize, shard.MaxVocab)
	}
	return out, nil
}

// CheckJob validates everything of the job that the control plane does not:
// the model section (see ModelConfig). Commands call it at start so that a
// bad model is reported before any worker builds it.
func CheckJob(j *job.Job) error {
	_, err := ModelConfig(j.Model)
	return err
}
