package job

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// keyError is a value of the wrong type or an unknown key, at a line of
// the file (0 for a --set value).
type keyError struct {
	line int
	msg  string
}

func (e *keyError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("line %d: %s", e.line, e.msg)
	}
	return e.msg
}

// maxNodes bounds the YAML nodes checkKeys visits (aliases count each time
// they are followed), so that an alias bomb is an error, not a hang.
const maxNodes = 100_000

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// checkKeys checks n against the Go type t that it will be decoded into:
// every key of a mapping must be a field (its yaml tag) and every scalar
// must decode into its field's type; an integer field takes only whole
// numbers; a type with its own UnmarshalYAML (Duration) says what is wrong. Errors name the key
// dotted from the root (train.max_steps) and quote the value.
func checkKeys(n *yaml.Node, t reflect.Type, key string, budget *int) error {
	if *budget--; *budget < 0 {
		return &keyError{n.Line, fmt.Sprintf("%s: more than %d YAML nodes (aliases included)", key, maxNodes)}
	}
	if n.Kind == yaml.AliasNode {
		return checkKeys(n.Alias, t, key, budget)
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil // leaves the default
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) { // a type that checks itself, like Duration
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			return &keyError{n.Line, fmt.Sprintf("%s: %v", key, err)}
		}
		return nil
	}
	want := typeName(t)
	if t.Kind() == reflect.Struct {
		if n.Kind != yaml.MappingNode {
			return &keyError{n.Line, fmt.Sprintf("%s: %s is not %s", orRoot(key), describe(n), want)}
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := join(key, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				return &keyError{k.Line, fmt.Sprintf("unknown key %s (%s has %s)", sub, orRoot(key), strings.Join(slices.Sorted(maps.Keys(fields)), ", "))}
			}
			if err := checkKeys(v, ft, sub, budget); err != nil {
				return err
			}
		}
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return &keyError{n.Line, fmt.Sprintf("%s: %s is not %s", key, describe(n), want)}
	}
	dst := reflect.New(t)
	ok := n.Decode(dst.Interface()) == nil
	if ok && n.ShortTag() == "!!float" && isInt(t) {
		var f float64
		ok = n.Decode(&f) == nil && f == math.Trunc(f) // yaml would truncate 1.5 to 1
	}
	if !ok {
		return &keyError{n.Line, fmt.Sprintf("%s: %s is not %s", key, describe(n), want)}
	}
	return nil
}

func isInt(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

func typeName(t reflect.Type) string {
	switch {
	case isInt(t) && t.Kind() >= reflect.Uint:
		return "a non-negative integer"
	case isInt(t):
		return "an integer"
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Struct:
		return "a mapping of keys"
	}
	return t.String()
}

// describe quotes a node for an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	return fmt.Sprintf("%q", v)
}

func join(key, sub string) string {
	if key == "" {
		return sub
	}
	return key + "." + sub
}

func orRoot(key string) string {
	if key == "" {
		return "the job file"
	}
	return key
}

// yamlFields maps the yaml keys of struct t to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case !f.IsExported() || name == "-":
		case name == "":
			out[strings.ToLower(f.Name)] = f.Type
		default:
			out[name] = f.Type
		}
	}
	return out
}

// Keys lists every key of a job file, dotted (train.lr), sorted.
func Keys() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for name, ft := range yamlFields(t) {
			if ft.Kind() == reflect.Struct {
				walk(ft, join(prefix, name))
			} else {
				out = append(out, join(prefix, name))
			}
		}
	}
	walk(reflect.TypeFor[Job](), "")
	slices.Sort(out)
	return out
}

// fieldType returns the type of the dotted key of a job file.
func fieldType(key string) (reflect.Type, error) {
	t := reflect.TypeFor[Job]()
	prefix := ""
	for _, part := range strings.Split(key, ".") {
		if t.Kind() != reflect.Struct {
			return nil, fmt.Errorf("unknown key %s (%s is %s)", key, prefix, typeName(t))
		}
		fields := yamlFields(t)
		ft, ok := fields[part]
		if !ok {
			return nil, fmt.Errorf("unknown key %s (%s has %s)", join(prefix, part), orRoot(prefix), strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
		}
		t, prefix = ft, join(prefix, part)
	}
	return t, nil
}

// Set applies overrides "key=value" (a dotted key of the job file, a YAML
// value: --set train.lr=1e-3) to the text of a job file and returns the
// new text, which Parse then reads like any job file. Each override is
// checked on its own first, so its error names the --set.
func Set(data []byte, sets []string) ([]byte, error) {
	if len(sets) == 0 {
		return data, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, errors.New(yamlMessage(err))
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		*root = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the job file is %s, not a mapping of keys", describe(root))
	}
	for _, s := range sets {
		key, val, ok := strings.Cut(s, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("--set %q: want key=value, e.g. train.lr=1e-3", s)
		}
		t, err := fieldType(key)
		if err != nil {
			return nil, fmt.Errorf("--set %s: %w", s, err)
		}
		v := valueNode(val)
		budget := maxNodes
		if err := checkKeys(v, t, key, &budget); err != nil {
			return nil, fmt.Errorf("--set %s: %w", s, err)
		}
		setPath(root, strings.Split(key, "."), v)
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// valueNode parses a --set value as YAML; what does not parse (or is
// empty) is the string itself.
func valueNode(val string) *yaml.Node {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(val), &n); err != nil || n.Kind != yaml.DocumentNode || len(n.Content) == 0 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val}
	}
	v := n.Content[0]
	clearLines(v) // errors about it name the --set, not a line
	return v
}

func clearLines(n *yaml.Node) {
	n.Line, n.Column = 0, 0
	for _, c := range n.Content {
		clearLines(c)
	}
}

// setPath sets the value at path in mapping m, creating mappings on the way.
func setPath(m *yaml.Node, path []string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != path[0] {
			continue
		}
		if len(path) == 1 {
			if v.LineComment == "" {
				v.LineComment = m.Content[i+1].LineComment
			}
			m.Content[i+1] = v
			return
		}
		child := m.Content[i+1]
		for child.Kind == yaml.AliasNode {
			child = child.Alias
		}
		if child.Kind != yaml.MappingNode {
			child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		} else {
			c := *child // an alias target may be shared: edit a copy
			c.Content, c.Anchor = slices.Clone(c.Content), ""
			child = &c
		}
		m.Content[i+1] = child
		setPath(child, path[1:], v)
		return
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: path[0]}
	if len(path) == 1 {
		m.Content = append(m.Content, k, v)
		return
	}
	child := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	m.Content = append(m.Content, k, child)
	setPath(child, path[1:], v)
}
