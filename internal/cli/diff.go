package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/kargo-gha/kargo-gha/internal/migrate"
)

// contextLines is the unified diff context, as diff -u and git use.
const contextLines = 3

// writeUnifiedDiff prints the unified diff (as `diff -u` prints it, which
// patch -p0 and git apply -p0 apply) that the edits make of src. The edits
// are what the migration changed, so no comparison of the two texts is
// needed: time and memory are linear in the file, where a general line
// diff is quadratic in the worst case. Lines are printed as they are,
// carriage returns included, so that the diff applies to a CRLF file.
func writeUnifiedDiff(w io.Writer, name string, src []byte, edits []migrate.Edit) error {
	if len(edits) == 0 {
		return nil
	}
	lines := lineOffsets(src)
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "--- %s\n+++ %s\n", name, name)
	shift := 0 // lines the new text has more than the old before this hunk
	for first := 0; first < len(edits); {
		// A hunk joins the edits whose unchanged gap its context would
		// cover: at most 2*contextLines lines apart.
		last := first
		for last+1 < len(edits) && edits[last+1].From-edits[last].To <= 2*contextLines {
			last++
		}
		from := max(0, edits[first].From-contextLines)
		to := min(len(lines), edits[last].To+contextLines)
		added := 0
		for _, e := range edits[first : last+1] {
			added += len(e.Lines) - (e.To - e.From)
		}
		fmt.Fprintf(bw, "@@ -%s +%s @@\n", hunkRange(from, to-from), hunkRange(from+shift, to-from+added))
		next := from
		for i := first; i <= last; {
			// Touching edits (a step's owner, repo and credentials entries)
			// print as one change: its removed lines, then its added ones.
			j := i
			for j < last && edits[j+1].From == edits[j].To {
				j++
			}
			writeLines(bw, ' ', src, lines[next:edits[i].From])
			writeLines(bw, '-', src, lines[edits[i].From:edits[j].To])
			for _, e := range edits[i : j+1] {
				for _, l := range e.Lines {
					writeLine(bw, '+', []byte(l))
				}
			}
			next, i = edits[j].To, j+1
		}
		writeLines(bw, ' ', src, lines[next:to])
		shift += added
		first = last + 1
	}
	return bw.Flush()
}

// hunkRange is a hunk's "start,count", start 1-based; an empty range
// starts at the line before it, as diff -u writes it.
func hunkRange(start, count int) string {
	if count == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	return fmt.Sprintf("%d,%d", start+1, count)
}

// lineOffsets are the [start, end) byte ranges of src's lines, endings
// included: two ints a line, not a copy of the text.
func lineOffsets(src []byte) [][2]int {
	out := make([][2]int, 0, bytes.Count(src, []byte{'\n'})+1)
	for start := 0; start < len(src); {
		end := len(src)
		if i := bytes.IndexByte(src[start:], '\n'); i >= 0 {
			end = start + i + 1
		}
		out = append(out, [2]int{start, end})
		start = end
	}
	return out
}

func writeLines(w *bufio.Writer, mark byte, src []byte, lines [][2]int) {
	for _, l := range lines {
		writeLine(w, mark, src[l[0]:l[1]])
	}
}

// writeLine prints one diff line; a last line without a newline gets the
// marker patch and git expect.
func writeLine(w *bufio.Writer, mark byte, line []byte) {
	w.WriteByte(mark)
	w.Write(line)
	if len(line) == 0 || line[len(line)-1] != '\n' {
		w.WriteString("\n\\ No newline at end of file\n")
	}
}
