package wait

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/safetext"
)

const (
	// OutputsFile is the file in the outputs artifact that holds the run's
	// outputs: one JSON object of strings, numbers and booleans.
	OutputsFile = "outputs.json"
	// MaxArtifactBytes bounds the outputs artifact's archive: a few keys
	// compress to a few hundred bytes; a large archive is not an outputs
	// file.
	MaxArtifactBytes = 1 << 20
	// MaxOutputsBytes bounds outputs.json: outputs live in the Promotion's
	// state, which Kubernetes stores in etcd (objects of at most 1.5 MB).
	MaxOutputsBytes = 64 << 10
	// MaxOutputKeys bounds the keys of outputs.json.
	MaxOutputKeys = 100
	// maxZipEntries bounds the entries of the archive looked at.
	maxZipEntries = 100
	// maxCompressionRatio refuses an entry that inflates more than this:
	// JSON compresses about 3-10 times; a zip bomb thousands of times.
	maxCompressionRatio = 100
)

// outputKey is a key later steps can name in an expression:
// outputs['wait'].outputs.imageDigest.
var outputKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`)

// ErrOutputs marks every failure to obtain a run's outputs that is the
// artifact's fault (missing, expired, too large, not the documented JSON),
// as against GitHub failing to answer.
var ErrOutputs = errors.New("the run's outputs cannot be read")

// Outputs lists run runID's artifacts named name, downloads the one
// artifact's archive and returns the keys of its OutputsFile: strings,
// int64 or float64 numbers, booleans. Problems with the artifact are final
// errors wrapping ErrOutputs; GitHub failing is transient. It costs two API
// requests (the listing, the download's redirect) and one blob download.
//
// GitHub API docs: https://docs.github.com/rest/actions/artifacts#list-workflow-run-artifacts
func (c *Checker) Outputs(ctx context.Context, client *ghclient.Client, runID int64, name string) (map[string]any, error) {
	a, err := findArtifact(ctx, client, runID, name)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("artifact %q (ID %d) of run %d", name, a.GetID(), runID)
	body, err := client.Download(ctx, fmt.Sprintf("repos/%s/%s/actions/artifacts/%d/zip", url.PathEscape(client.Repo.Owner), url.PathEscape(client.Repo.Name), a.GetID()), what, MaxArtifactBytes)
	if errors.Is(err, ghclient.ErrDownloadGone) {
		return nil, outputsErr("%s has expired (410 Gone): artifacts are deleted after their retention period; run the workflow again", what)
	}
	if err != nil {
		return nil, err
	}
	defer body.Close()
	archive, err := io.ReadAll(body)
	if errors.Is(err, ghclient.ErrDownloadTooLarge) {
		return nil, outputsErr("%s is larger than %d KiB; it should hold only %s", what, MaxArtifactBytes>>10, OutputsFile)
	}
	if err != nil {
		return nil, failure.Transient(fmt.Errorf("downloading %s: %w", what, err))
	}
	raw, err := outputsEntry(archive)
	if err != nil {
		return nil, outputsErr("%s: %v", what, err)
	}
	out, err := ParseOutputs(raw)
	if err != nil {
		return nil, outputsErr("%s: %s: %v", what, OutputsFile, err)
	}
	return out, nil
}

func outputsErr(format string, args ...any) error {
	return failure.Final(&outputsError{msg: fmt.Sprintf(format, args...)})
}

// outputsError is an ErrOutputs whose message says only what is wrong.
type outputsError struct{ msg string }

func (e *outputsError) Error() string        { return e.msg }
func (e *outputsError) Is(target error) bool { return target == ErrOutputs }

// findArtifact is the one unexpired artifact of the run named name.
func findArtifact(ctx context.Context, client *ghclient.Client, runID int64, name string) (*github.Artifact, error) {
	u := fmt.Sprintf("repos/%s/%s/actions/runs/%d/artifacts?name=%s&per_page=100", url.PathEscape(client.Repo.Owner), url.PathEscape(client.Repo.Name), runID, url.QueryEscape(name))
	req, err := client.NewRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	var list github.ArtifactList
	if _, err := client.Do(req, &list); err != nil {
		return nil, ghclient.Classify(err, fmt.Sprintf("listing the artifacts of run %d", runID), ghclient.Hints{
			Forbidden: "the credentials need the actions:read permission",
		})
	}
	var found, expired []*github.Artifact
	for _, a := range list.Artifacts {
		switch {
		case a.GetName() != name:
		case a.GetWorkflowRun() != nil && a.GetWorkflowRun().GetID() != 0 && a.GetWorkflowRun().GetID() != runID:
			return nil, outputsErr("the server listed artifact %d of run %d for run %d", a.GetID(), a.GetWorkflowRun().GetID(), runID)
		case a.GetExpired():
			expired = append(expired, a)
		default:
			found = append(found, a)
		}
	}
	switch {
	case len(found) == 1 && found[0].GetSizeInBytes() > MaxArtifactBytes:
		return nil, outputsErr("artifact %q (ID %d) of run %d is %d bytes, more than %d KiB; it should hold only %s", name, found[0].GetID(), runID, found[0].GetSizeInBytes(), MaxArtifactBytes>>10, OutputsFile)
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return nil, outputsErr("run %d has %d artifacts named %q (IDs %s): which one holds the outputs cannot be told; upload it once per run", runID, len(found), name, artifactIDs(found))
	case len(expired) > 0:
		return nil, outputsErr("artifact %q (ID %d) of run %d has expired (at %s): artifacts are deleted after their retention period", name, expired[0].GetID(), runID, expired[0].GetExpiresAt().UTC().Format("2006-01-02T15:04:05Z"))
	}
	return nil, outputsErr("run %d has no artifact named %q: the workflow must upload %s with actions/upload-artifact (name: %s) before it ends", runID, name, OutputsFile, name)
}

func artifactIDs(as []*github.Artifact) string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = strconv.FormatInt(a.GetID(), 10)
	}
	return strings.Join(ids, ", ")
}

// outputsEntry checks the archive (entry count, every entry's path, the
// outputs entry's size and compression ratio) and returns OutputsFile's
// content. Nothing is written to disk; a hostile archive is refused whole
// all the same, as it says the artifact is not what the step expects.
func outputsEntry(archive []byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		return nil, fmt.Errorf("not a zip archive: %v", err)
	}
	if len(zr.File) > maxZipEntries {
		return nil, fmt.Errorf("the archive has %d entries, more than %d; it should hold only %s", len(zr.File), maxZipEntries, OutputsFile)
	}
	var entry *zip.File
	names := make([]string, 0, len(zr.File))
	for _, f := range zr.File {
		if !safeEntryPath(f.Name) {
			return nil, fmt.Errorf("the archive has an entry with an unsafe path, %q (absolute, or leading out with ..)", safetext.Clean(f.Name))
		}
		names = append(names, f.Name)
		if f.Name == OutputsFile {
			entry = f
		}
	}
	if entry == nil {
		return nil, fmt.Errorf("the archive holds no %s at its top level (entries: %s)", OutputsFile, safetext.Clean(strings.Join(names[:min(len(names), 5)], ", ")))
	}
	if entry.UncompressedSize64 > MaxOutputsBytes {
		return nil, fmt.Errorf("%s is %d bytes, more than %d KiB", OutputsFile, entry.UncompressedSize64, MaxOutputsBytes>>10)
	}
	if entry.CompressedSize64 > 0 && entry.UncompressedSize64/entry.CompressedSize64 > maxCompressionRatio {
		return nil, fmt.Errorf("%s inflates %d times (%d to %d bytes), more than %d: a zip bomb", OutputsFile, entry.UncompressedSize64/entry.CompressedSize64, entry.CompressedSize64, entry.UncompressedSize64, maxCompressionRatio)
	}
	rc, err := entry.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", OutputsFile, err)
	}
	defer rc.Close()
	// The sizes in the archive's directory can lie: the read is bounded
	// by what was checked, and archive/zip checks the CRC at the end.
	raw, err := io.ReadAll(io.LimitReader(rc, MaxOutputsBytes+1))
	switch {
	case errors.Is(err, zip.ErrFormat):
		return nil, fmt.Errorf("%s inflates to more than its header says (%d bytes): a zip bomb or a broken archive", OutputsFile, entry.UncompressedSize64)
	case err != nil:
		return nil, fmt.Errorf("%s: %v", OutputsFile, err)
	case len(raw) > MaxOutputsBytes:
		return nil, fmt.Errorf("%s inflates to more than %d KiB, more than its header says: a zip bomb or a broken archive", OutputsFile, MaxOutputsBytes>>10)
	}
	return raw, nil
}

// safeEntryPath refuses absolute paths, Windows drive and backslash
// forms, and paths that lead out of the archive's directory.
func safeEntryPath(name string) bool {
	switch {
	case name == "", strings.HasPrefix(name, "/"), strings.ContainsAny(name, "\\\x00"), len(name) > 1 && name[1] == ':':
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return false
		}
	}
	return !strings.HasPrefix(path.Clean(name), "../")
}

// ParseOutputs reads an outputs file: one JSON object whose keys are
// expression-friendly names and whose values are strings, numbers
// (int64 when whole, else float64) or booleans. Every problem names its
// key.
func ParseOutputs(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	out := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not valid JSON: %v", err)
		}
		key, _ := tok.(string)
		if err := checkOutputKey(key, out); err != nil {
			return nil, err
		}
		if out[key], err = outputValue(dec, key); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("more than one JSON value")
	}
	return out, nil
}

func checkOutputKey(key string, seen map[string]any) error {
	switch _, dup := seen[key]; {
	case !outputKey.MatchString(key):
		return fmt.Errorf("key %q is not a name of letters, digits, _ and - (starting with a letter or _, at most 64)", safetext.Clean(key))
	case dup:
		return fmt.Errorf("key %q appears twice", key)
	case len(seen) >= MaxOutputKeys:
		return fmt.Errorf("more than %d keys", MaxOutputKeys)
	}
	return nil
}

func outputValue(dec *json.Decoder, key string) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("key %q: not valid JSON: %v", key, err)
	}
	switch v := tok.(type) {
	case string, bool:
		return v, nil
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n, nil
		}
		f, err := v.Float64()
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("key %q: %s is out of range", key, v)
		}
		return f, nil
	case nil:
		return nil, fmt.Errorf("key %q is null; use a string, a number or a boolean", key)
	}
	return nil, fmt.Errorf("key %q holds an object or a list; use a string, a number or a boolean (a JSON-encoded string for structure)", key)
}
