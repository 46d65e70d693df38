package main

import (
	"fmt"
	"strings"
)

// markdownSummary is the summary as a GitHub step summary: counts and a
// table of every spec.
func markdownSummary(records []specRecord, s summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### ispec build\n\n%d specs in %s: **%d found**, **%d built**, **%d failed**\n\n", s.Specs, seconds(s.Duration), s.Found, s.Built, s.Failed)
	b.WriteString("| spec | image | outcome | time |\n| --- | --- | --- | --- |\n")
	for _, rec := range records {
		img := ""
		if rec.Digest != "" {
			img = "`" + rec.Ref + "@" + rec.Digest + "`"
		} else if rec.Ref != "" {
			img = "`" + rec.Ref + "`"
		}
		outcome := rec.Outcome
		if rec.Error != nil {
			outcome = fmt.Sprintf("%s (%s): %s", rec.Outcome, rec.Error.Class, markdownCell(rec.Error.Message))
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", markdownCell(rec.Spec), img, outcome, seconds(rec.Duration))
	}
	b.WriteString("\n")
	return b.String()
}

// markdownCell makes s fit in one table cell: one line, no |, not too long.
func markdownCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "`", "'")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
