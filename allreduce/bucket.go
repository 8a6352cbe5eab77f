package allreduce

// Bucket is a contiguous range of a flat float32 gradient buffer that is
// reduced as one operation.
type Bucket struct {
	ID int
	// Off and Len give the elements [Off, Off+Len) of the flat buffer.
	Off, Len int
	// First and Last give the parameters [First, Last) it holds.
	First, Last int
}

// PlanBuckets cuts a flat buffer that holds parameters of the given sizes
// (in elements, in layout order) into buckets of whole parameters, in the
// order the backward pass completes them: from the last parameter back to
// the first. A bucket is closed once it holds at least bucketBytes (PyTorch
// DDP's bucket_cap_mb; DefaultBucketBytes if ≤ 0), so only the first
// parameters may form a smaller one. Bucket i has ID i.
func PlanBuckets(sizes []int, bucketBytes int) []Bucket {
	if bucketBytes <= 0 {
		bucketBytes = DefaultBucketBytes
	}
	limit := (bucketBytes + 3) / 4
	end := 0
	for _, n := range sizes {
		end += n
	}
	var out []Bucket
	last, n := len(sizes), 0
	for i := len(sizes) - 1; i >= 0; i-- {
		n += sizes[i]
		if n >= limit || i == 0 {
			out = append(out, Bucket{ID: len(out), Off: end - n, Len: n, First: i, Last: last})
			end -= n
			last, n = i, 0
		}
	}
	return out
}
