package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/spec"
)

func newExplainCmd() *cobra.Command {
	var pretty, files bool
	cmd := &cobra.Command{
		Use:   "explain SPEC",
		Short: "Print exactly what was hashed into a spec's tag",
		Long: `Print the canonical document whose SHA-256 is the spec hash: the
normalized spec, the digests of the files it references and the target
platforms. Without --pretty the bytes printed are the bytes hashed
(followed by a newline). --files also lists every file of each referenced
tree with its mode and digest (the input of the tree digest). Each Python requirement that floats
(pip resolves it when the image is built) is named on stderr.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, imgs, err := loadSpecs(cmd, args)
			if err != nil {
				return err
			}
			img := imgs[0]
			out := cmd.OutOrStdout()
			doc := img.Document
			if pretty {
				var b bytes.Buffer
				if err := json.Indent(&b, doc, "", "  "); err != nil {
					return err
				}
				doc = b.Bytes()
			}
			fmt.Fprintf(out, "%s\n", doc)
			// On stderr: stdout is the bytes hashed.
			if fl := img.Floating(); len(fl) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d Python requirement(s) float (pip resolves them when the image is built; build --locked refuses them):\n", img.File, len(fl))
				printFloating(cmd.ErrOrStderr(), img)
			}
			if files {
				fmt.Fprintf(out, "\nspec_hash: %s\ntag: %s\n", img.Identity.SpecHash, img.Identity.Tag)
				for _, t := range trees(img) {
					fmt.Fprintf(out, "\n%s %s (%d entries, %d bytes)\n", t.label, t.tree.Digest, len(t.tree.Entries), t.tree.Size())
					for _, e := range t.tree.Entries {
						fmt.Fprintf(out, "  %s\n", describeEntry(e))
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&pretty, "pretty", false, "indent the document for reading (the hash is over the compact form)")
	cmd.Flags().BoolVar(&files, "files", false, "also list every file of each referenced tree")
	return cmd
}

type labeledTree struct {
	label string
	tree  *spec.Tree
}

// trees lists an image's referenced trees with the names the hash gives them.
func trees(img *spec.Image) []labeledTree {
	var out []labeledTree
	if img.Requirements != nil {
		out = append(out, labeledTree{"requirements " + printable(img.Spec.Requirements), img.Requirements})
	}
	for i, t := range img.Copies {
		out = append(out, labeledTree{"copy " + printable(img.Spec.Copy[i]), t})
	}
	if img.Source != nil {
		out = append(out, labeledTree{"source_root " + printable(img.Spec.SourceRoot), img.Source})
	}
	return append(out, layerTrees(img)...)
}

func describeEntry(e spec.Entry) string {
	switch e.Kind {
	case spec.KindFile:
		return fmt.Sprintf("%-7s %04o %s %s", e.Kind, e.Mode, e.Digest, printable(e.Path))
	case spec.KindSymlink:
		return fmt.Sprintf("%-7s %04o %s -> %s", e.Kind, e.Mode, printable(e.Path), printable(e.Target))
	}
	return fmt.Sprintf("%-7s %04o %s", e.Kind, e.Mode, printable(e.Path))
}

// printable returns a file name as is when it prints as itself, else
// quoted with Go's escapes: names with control characters (a newline, an
// escape sequence for the terminal), other characters that do not print,
// bytes that are not UTF-8, or a leading quote (so that a quoted name is
// never mistaken for a plain one).
func printable(name string) string {
	if utf8.ValidString(name) && !strings.HasPrefix(name, `"`) &&
		!strings.ContainsFunc(name, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return name
	}
	return strconv.Quote(name)
}
