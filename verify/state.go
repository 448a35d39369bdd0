package verify

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// MemoryState is a State that lives as long as the process: for tests, for the demo, and
// for a one-shot `verify` run that must not touch the machine's own trust state.
type MemoryState struct {
	mu     sync.Mutex
	repos  map[string]*Saved
	newest time.Time
}

// NewMemoryState returns an empty MemoryState: nothing trusted yet, no newest time.
func NewMemoryState() *MemoryState {
	return &MemoryState{repos: map[string]*Saved{}}
}

// Load returns a copy of what was saved for repository, or nil when nothing was.
func (m *MemoryState) Load(repository string) (*Saved, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.repos[repository]
	if !ok {
		return nil, nil
	}
	return copySaved(s), nil
}

// Save keeps a copy of s, so the caller may go on changing its own.
func (m *MemoryState) Save(repository string, s *Saved) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.repos[repository] = copySaved(s)
	return nil
}

// NewestTime returns the newest time saved, zero when none.
func (m *MemoryState) NewestTime() (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.newest, nil
}

// SaveNewestTime records t as the newest trusted time.
func (m *MemoryState) SaveNewestTime(t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.newest = t
	return nil
}

func copySaved(s *Saved) *Saved {
	if s == nil {
		return nil
	}
	c := &Saved{
		Root:      slices.Clone(s.Root),
		Timestamp: slices.Clone(s.Timestamp),
		Snapshot:  slices.Clone(s.Snapshot),
	}
	if s.Targets != nil {
		c.Targets = make(map[string][]byte, len(s.Targets))
		for role, b := range maps.All(s.Targets) {
			c.Targets[role] = slices.Clone(b)
		}
	}
	return c
}
