package ghsim

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// logTime is the timestamp that starts every line of a job log, as GitHub
// writes it (seven fractional digits, UTC).
const logTime = "2006-01-02T15:04:05.0000000Z"

// stepSpan is when step n (1-based) of job spec ran: the job's run time
// split evenly between its steps. The jobs listing and the job log agree.
func (r *run) stepSpan(spec Job, n int) (start, end time.Time) {
	started := r.createdAt.Add(r.queuedFor)
	d := r.runFor
	if len(spec.Steps) > 0 {
		d /= time.Duration(len(spec.Steps))
	}
	start = started.Add(time.Duration(n-1) * d)
	return start, start.Add(d)
}

// jobSpec finds job id of the request's repository: its run and spec,
// once completed; s.mu is held.
func (s *Server) jobSpec(owner, name string, id int64, now time.Time) (*run, Job, bool) {
	repo := s.repo(owner, name)
	if repo == nil {
		return nil, Job{}, false
	}
	for _, rn := range repo.runs {
		if rn.id != id/10 || !rn.visible(now) {
			continue
		}
		specs := rn.workflow.Jobs
		if len(specs) == 0 {
			specs = []Job{defaultJob}
		}
		st, _, _ := rn.status(now)
		if i := int(id%10) - 1; st == "completed" && i >= 0 && i < len(specs) {
			return rn, specs[i], true
		}
	}
	return nil, Job{}, false
}

// defaultJob is the job of a workflow that names none.
var defaultJob = Job{Name: "build", Steps: []string{"Run the build"}, FailAt: 1}

// jobLogs answers GET /repos/{owner}/{repo}/actions/jobs/{id}/logs: 302 to
// a signed blob URL, once the job has completed.
func (s *Server) jobLogs(w http.ResponseWriter, r *http.Request, _ string, _ *Fault) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	now := s.now()
	s.mu.Lock()
	_, _, ok := s.jobSpec(r.PathValue("owner"), r.PathValue("repo"), id, now)
	s.mu.Unlock()
	if err != nil || !ok {
		writeError(w, http.StatusNotFound, "Not Found", docsBase+"/actions/workflow-jobs#download-job-logs-for-a-workflow-run")
		return
	}
	s.redirectToBlob(w, fmt.Sprintf("/logs/%d", id))
}

// logBlob is the log of job id, streamed: a LogFill of gigabytes is never
// held; s.mu is held.
func (s *Server) logBlob(id int64) (blob, bool) {
	for _, repo := range s.repos {
		for _, rn := range repo.runs {
			if rn.id != id/10 {
				continue
			}
			rn, spec, ok := s.jobSpec(repo.Owner, repo.Name, id, s.now())
			if !ok {
				return blob{}, false
			}
			failed := rn.conclusion() != "success" && spec.FailAt > 0
			return blob{contentType: "text/plain; charset=utf-8", size: -1, write: func(w io.Writer) error {
				return rn.writeLog(w, spec, failed)
			}}, true
		}
	}
	return blob{}, false
}

// writeLog writes a job's log in GitHub's format: each line timestamped,
// each step opened by "##[group]Run <step>", the failing step's output
// (LogFill bytes of filler, then Log) closed by "##[error]".
func (r *run) writeLog(w io.Writer, spec Job, failed bool) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	line := func(t time.Time, text string) {
		bw.WriteString(t.UTC().Format(logTime))
		bw.WriteByte(' ')
		bw.WriteString(text)
		bw.WriteByte('\n')
	}
	jobStart, _ := r.stepSpan(spec, 1)
	line(jobStart, "Current runner version: '2.321.0'")
	for n, name := range spec.Steps {
		start, end := r.stepSpan(spec, n+1)
		if failed && n+1 > spec.FailAt || spec.Cancelled && r.conclusion() != "success" {
			break
		}
		line(start, "##[group]Run "+name)
		line(start, name)
		line(start, "##[endgroup]")
		if !failed || n+1 != spec.FailAt {
			line(start, "ok")
			continue
		}
		if err := writeFill(bw, start, spec.LogFill); err != nil {
			return err
		}
		for _, l := range spec.Log {
			line(end.Add(-time.Millisecond), l)
		}
		line(end.Add(-time.Millisecond), "##[error]Process completed with exit code 1.")
	}
	_, end := r.stepSpan(spec, len(spec.Steps))
	line(end, "Cleaning up orphan processes")
	return bw.Flush()
}

// writeFill writes about n bytes of numbered filler lines at t, from one
// reused buffer: a log of gigabytes costs the simulator no memory.
func writeFill(bw *bufio.Writer, t time.Time, n int64) error {
	line := []byte(t.UTC().Format(logTime) + " output line ")
	prefix := len(line)
	pad := strings.Repeat("x", 60)
	for i, written := int64(0), int64(0); written < n; i++ {
		line = strconv.AppendInt(line[:prefix], i, 10)
		line = append(line, ' ')
		line = append(line, pad...)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
		written += int64(len(line))
	}
	return nil
}
