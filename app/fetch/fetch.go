package fetch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Result is what a fetch brought.
type Result struct {
	Repository string `json:"repository"`
	// Mirror served the metadata that is now trusted.
	Mirror           string    `json:"mirror"`
	RootVersion      int64     `json:"root_version"`
	TimestampVersion int64     `json:"timestamp_version"`
	SnapshotVersion  int64     `json:"snapshot_version"`
	TargetsVersion   int64     `json:"targets_version"`
	Expires          time.Time `json:"expires"` // the timestamp's: fetch again before it
	// Updated is set when the metadata differs from what this machine trusted before.
	Updated bool `json:"updated"`
	// Available lists every release the repository offers now.
	Available []Release `json:"available"`
	// HardwareIDs lists every hardware id those releases fit.
	HardwareIDs []string `json:"hardware_ids"`
	// Targets are the releases picked for the hardware asked for, now in the cache.
	Targets  []Fetched `json:"targets"`
	Skipped  []string  `json:"skipped,omitempty"`
	Warnings []string  `json:"warnings,omitempty"`
	// Dropped names the mirrors left during this fetch for serving bad data, and why.
	Dropped map[string]string `json:"dropped,omitempty"`
}

// Fetched is one release in the cache.
type Fetched struct {
	Release
	// File is the verified file in the cache.
	File string `json:"file"`
	// Downloaded is how many bytes came over the network in this run (0: it was cached).
	Downloaded int64 `json:"downloaded"`
}

// Fetch refreshes the metadata of the repository and downloads the newest release of each
// component for each hardware id asked for. On an error the Result holds what was done
// (the metadata may be refreshed even when a download failed).
func Fetch(ctx context.Context, opts Options) (*Result, error) {
	s, err := newSession(opts)
	if err != nil {
		return nil, err
	}
	t, err := s.refresh(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{
		Repository:       s.pinned.Name,
		Mirror:           t.mirror,
		RootVersion:      t.tm.Root.Signed.Version,
		TimestampVersion: t.tm.Timestamp.Signed.Version,
		SnapshotVersion:  t.tm.Snapshot.Signed.Version,
		TargetsVersion:   t.tm.Targets[metadata.TARGETS].Signed.Version,
		Expires:          t.tm.Timestamp.Signed.Expires,
		Updated:          t.saved.Timestamp == nil || string(t.saved.Timestamp) != string(t.raw[metadata.TIMESTAMP]),
	}
	res.Available, res.Skipped = releases(t.tm, t.order, s.policy.MaxRoles)
	res.HardwareIDs = hardwareIDs(res.Available)
	defer func() {
		res.Warnings = s.warnings
		s.mu.Lock()
		if len(s.wrong) > 0 {
			res.Dropped = map[string]string{}
			for m, why := range s.wrong {
				res.Dropped[m] = why
			}
		}
		s.mu.Unlock()
	}()
	if len(opts.Hardware) == 0 {
		return res, nil
	}
	picked, missing := pick(res.Available, opts.Hardware)
	if len(missing) > 0 {
		known := "none"
		if len(res.HardwareIDs) > 0 {
			known = strings.Join(res.HardwareIDs, ", ")
		}
		if len(picked) == 0 {
			return res, errorf(CodeNotFound, "hardware "+strings.Join(missing, ", "), "check the hardware id on the device's label; the repository has releases for: "+known,
				"no release of repository %s fits it", s.pinned.Name)
		}
		s.warn("no release fits hardware %s (the repository has releases for: %s)", strings.Join(missing, ", "), known)
	}
	consistent := t.tm.Root.Signed.ConsistentSnapshot
	var firstErr error
	for _, r := range picked {
		file, got, err := s.download(ctx, r, consistent)
		if err != nil {
			if CodeOf(err) == CodeCanceled {
				return res, err
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		res.Targets = append(res.Targets, Fetched{Release: r, File: file, Downloaded: got})
	}
	if firstErr != nil && len(picked) > 1 {
		return res, fmt.Errorf("%d of %d releases fetched: %w", len(res.Targets), len(picked), firstErr)
	}
	return res, firstErr
}
