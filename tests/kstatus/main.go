// Command kstatus prints the kstatus of Kubernetes objects, computed by the
// real library Flux, kpt and cli-utils use (sigs.k8s.io/cli-utils/pkg/kstatus).
//
// It reads one object, a YAML stream of objects or a List (JSON or YAML) from
// the file named by its only argument, or from stdin when there is none or it
// is "-", and prints one JSON line per object:
//
//	{"kind":"RayJobRef","name":"job-1","status":"Current","message":"..."}
//
// The tests use it to prove rayref's kinds are kstatus-compatible.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type line struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	in := stdin
	switch {
	case len(args) > 1:
		return errors.New("usage: kstatus [FILE|-]")
	case len(args) == 1 && args[0] != "-":
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	decoder := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(in), 4096)
	enc := json.NewEncoder(stdout)
	seen := 0
	for {
		var raw json.RawMessage
		if err := decoder.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("decoding input: %w", err)
		}
		if len(raw) == 0 || string(raw) == "null" {
			continue // an empty YAML document
		}
		items, err := objects(raw)
		if err != nil {
			return err
		}
		for i := range items {
			res, err := status.Compute(&items[i])
			if err != nil {
				return fmt.Errorf("%s %s: %w", items[i].GetKind(), items[i].GetName(), err)
			}
			if err := enc.Encode(line{items[i].GetKind(), items[i].GetName(), res.Status.String(), res.Message}); err != nil {
				return err
			}
			seen++
		}
	}
	if seen == 0 {
		return errors.New("no object in input")
	}
	return nil
}

// objects decodes one object or a List the way the apiserver's clients do,
// so that integers stay int64 (kstatus compares generations as int64).
func objects(raw json.RawMessage) ([]unstructured.Unstructured, error) {
	decoded, _, err := unstructured.UnstructuredJSONScheme.Decode(raw, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decoding object: %w", err)
	}
	switch obj := decoded.(type) {
	case *unstructured.UnstructuredList:
		return obj.Items, nil
	case *unstructured.Unstructured:
		return []unstructured.Unstructured{*obj}, nil
	default:
		return nil, fmt.Errorf("unexpected object %T", decoded)
	}
}
