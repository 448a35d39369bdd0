package app

import (
	"context"
	"errors"
	"time"

	"github.com/fieldflash/fieldflash/app/fetch"
	"github.com/fieldflash/fieldflash/app/selfupdate"
)

// The online side of a session: fetching the vendor's newest releases into the cache,
// assembling bundles from it, and updating fieldflash itself (docs/fetch.md,
// docs/self-update.md). The work is app/fetch's and app/selfupdate's; a session gives them
// its home, pinned roots and trusted state, so what a fetch learns guards every later
// verification.

// Words of the online side that faces show.
type (
	// Remote is how this machine reaches one repository: mirrors, client certificate, CA.
	Remote = fetch.Remote
	// FetchEvent is one thing a fetch reports (mirror, metadata, progress, retry, ...).
	FetchEvent = fetch.Event
	// FetchEventKind says what a FetchEvent reports.
	FetchEventKind = fetch.EventKind
	// FetchResult is what a fetch brought.
	FetchResult = fetch.Result
	// Release is one target a repository offers.
	Release = fetch.Release
	// Fetched is a release in the cache.
	Fetched = fetch.Fetched
	// FetchError is a fetch's failure: code, thing, reason, next step.
	FetchError = fetch.Error
	// BundleResult is a bundle assembled from the cache.
	BundleResult = fetch.BundleResult
	// Build is a build of fieldflash: version and release counter.
	Build = selfupdate.Build
	// UpdateOffer is a build of fieldflash found in a verified bundle.
	UpdateOffer = selfupdate.Offer
	// UpdateApplied says what an update or rollback did.
	UpdateApplied = selfupdate.Applied
	// UpdateError is a self-update's refusal or failure.
	UpdateError = selfupdate.Error
)

// Fetch event kinds.
const (
	FetchMirror   = fetch.EventMirror
	FetchMetadata = fetch.EventMetadata
	FetchStart    = fetch.EventStart
	FetchProgress = fetch.EventProgress
	FetchDone     = fetch.EventDone
	FetchRetry    = fetch.EventRetry
	FetchDropped  = fetch.EventDropped
	FetchWarning  = fetch.EventWarning
)

// Platform is the hardware id of fieldflash builds for this machine (GOOS-GOARCH).
func Platform() string { return selfupdate.Platform() }

// FetchRequest says what to fetch.
type FetchRequest struct {
	// Repository names the pinned root; "" picks the only one with a remote.
	Repository string
	// Hardware lists hardware ids whose newest releases are downloaded; none refreshes
	// the metadata only.
	Hardware []string
}

// Fetch refreshes the repository's metadata and downloads the newest releases for the
// hardware asked for into the cache.
func (s *Session) Fetch(ctx context.Context, req FetchRequest, onEvent func(FetchEvent)) (*FetchResult, error) {
	return fetch.Fetch(ctx, s.fetchOptions(req.Repository, req.Hardware, onEvent))
}

func (s *Session) fetchOptions(repo string, hardware []string, onEvent func(FetchEvent)) fetch.Options {
	return fetch.Options{Home: s.Home, Repository: repo, Roots: s.roots, State: s.state, Hardware: hardware, Events: onEvent, UserAgent: "fieldflash/" + running.Version}
}

// running is this build of fieldflash, as stamped at build time; the CLI package sets it
// (SetBuild) before either face starts.
var running = Build{Version: "dev"}

// SetBuild tells app which build of fieldflash is running: its version (sent as the
// User-Agent) and release counter (self-update refuses anything lower).
func SetBuild(b Build) { running = b }

// RunningBuild is the build SetBuild named.
func RunningBuild() Build { return running }

// BundleRequest says which bundle to assemble from the cache.
type BundleRequest struct {
	Repository string
	Hardware   string
	Paths      []string // the targets to carry instead of the newest per component
	Out        string
}

// Bundle assembles a .fwb from the cache, offline, and verifies it as a fresh laptop with
// the same pinned roots would.
func (s *Session) Bundle(req BundleRequest) (*BundleResult, error) {
	return fetch.Bundle(fetch.BundleOptions{Home: s.Home, Repository: req.Repository, Roots: s.roots, State: s.state, Hardware: req.Hardware, Paths: req.Paths, Out: req.Out})
}

// Remotes lists the repositories with mirrors configured.
func (s *Session) Remotes() ([]Remote, error) { return fetch.Remotes(s.Home) }

// SaveRemote configures (or reconfigures) how a repository is reached.
func (s *Session) SaveRemote(r Remote) error { return fetch.SaveRemote(s.Home, r) }

// RemoveRemote forgets a repository's mirrors (not its pinned root).
func (s *Session) RemoveRemote(name string) error { return fetch.RemoveRemote(s.Home, name) }

func (s *Session) updateOptions(current Build) selfupdate.Options {
	return selfupdate.Options{Home: s.Home, Roots: s.roots, State: s.state, Current: current, Executable: s.Executable, Now: time.Now}
}

// CheckSelfUpdate fetches the vendor's metadata and finds a build of fieldflash for this
// platform; the offer says whether it is newer than current.
func (s *Session) CheckSelfUpdate(ctx context.Context, current Build, repository string, onEvent func(FetchEvent)) (*UpdateOffer, error) {
	return selfupdate.Check(ctx, s.updateOptions(current), s.fetchOptions(repository, nil, onEvent))
}

// SelfUpdateFrom verifies a bundle (offline) and finds the build of fieldflash in it.
func (s *Session) SelfUpdateFrom(path string, current Build) (*UpdateOffer, error) {
	return selfupdate.FromBundle(resolvePath(path), s.updateOptions(current))
}

// ApplySelfUpdate replaces the running executable with the offered build, keeping the
// current one for RollbackSelfUpdate. The face has asked the user.
func (s *Session) ApplySelfUpdate(offer *UpdateOffer, current Build) (*UpdateApplied, error) {
	return selfupdate.Apply(offer, s.updateOptions(current))
}

// RollbackSelfUpdate puts the build before the last update back.
func (s *Session) RollbackSelfUpdate(current Build) (*UpdateApplied, error) {
	return selfupdate.Rollback(s.updateOptions(current))
}

// OnlineStatus classifies a fetch, bundle or self-update error the way the CLI's exit
// codes do.
func OnlineStatus(err error) Status {
	if err == nil {
		return StatusOK
	}
	switch fetch.CodeOf(err) {
	case fetch.CodeRefused, fetch.CodeNotFound:
		return StatusRefused
	case fetch.CodeCanceled:
		return StatusCanceled
	case fetch.CodeConfig, fetch.CodeOffline, fetch.CodeIO:
		return StatusEnvironment
	}
	var ue *selfupdate.Error
	if errors.As(err, &ue) {
		if ue.Refused {
			return StatusRefused
		}
		return StatusEnvironment
	}
	var ve *VerifyError
	if errors.As(err, &ve) {
		if ve.Code == CodeIO {
			return StatusEnvironment
		}
		return StatusRefused
	}
	if errors.Is(err, context.Canceled) {
		return StatusCanceled
	}
	return StatusEnvironment
}
