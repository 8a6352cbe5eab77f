package model

import (
	"archive/zip"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// readNPZ reads the float32 arrays of a numpy .npz archive (a zip of .npy
// files), keyed by name without ".npy", with their shapes.
func readNPZ(t *testing.T, path string) (map[string][]float32, map[string][]int) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	data := map[string][]float32{}
	shapes := map[string][]int{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(f.Name, ".npy")
		arr, shape, err := parseNPY(b)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, f.Name, err)
		}
		data[name], shapes[name] = arr, shape
	}
	return data, shapes
}

var npyShape = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)

// parseNPY parses a version 1 or 2 .npy holding little-endian float32 in C order.
func parseNPY(b []byte) ([]float32, []int, error) {
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return nil, nil, fmt.Errorf("not a .npy file")
	}
	var hlen, start int
	switch b[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		hlen, start = int(binary.LittleEndian.Uint32(b[8:12])), 12
	default:
		return nil, nil, fmt.Errorf("npy version %d", b[6])
	}
	header := string(b[start : start+hlen])
	if !strings.Contains(header, "'descr': '<f4'") || !strings.Contains(header, "'fortran_order': False") {
		return nil, nil, fmt.Errorf("want C-order <f4, header %s", header)
	}
	m := npyShape.FindStringSubmatch(header)
	if m == nil {
		return nil, nil, fmt.Errorf("no shape in header %s", header)
	}
	var shape []int
	n := 1
	for _, s := range strings.Split(m[1], ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		d, err := strconv.Atoi(s)
		if err != nil {
			return nil, nil, err
		}
		shape = append(shape, d)
		n *= d
	}
	raw := b[start+hlen:]
	if len(raw) != 4*n {
		return nil, nil, fmt.Errorf("data %d bytes, want %d", len(raw), 4*n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, shape, nil
}
