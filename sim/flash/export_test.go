package flash

// OpEnds exposes where each erase or program ended, so the power-cut test can cut exactly
// between two operations as well as inside them.
func (f *Flash) OpEnds() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.opEnds...)
}
