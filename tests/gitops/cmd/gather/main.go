// Command gather turns the cases the stack suites wrote (tests/src/gitops.rs, one
// `<dir>/<Kind>/<case>.yaml` per case: the expected health and the object) into Argo CD's
// layout: `<Kind>/testdata/<case>.yaml` and the kind's health_test.yaml. Cases already in
// health_test.yaml and not written again are kept. `make health-cases` runs it.
//
//	go run ./cmd/gather FROM_DIR
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"securepipe.local/tests/gitops"
)

type recorded struct {
	HealthStatus gitops.HealthStatus `json:"healthStatus"`
	Object       map[string]any      `json:"object"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gather FROM_DIR")
		os.Exit(2)
	}
	if err := gather(os.Args[1], gitops.CustomizationsDir); err != nil {
		fmt.Fprintln(os.Stderr, "gather:", err)
		os.Exit(1)
	}
}

func gather(from, root string) error {
	kinds, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, kind := range kinds {
		if !kind.IsDir() {
			continue
		}
		dir := gitops.KindDir(root, kind.Name())
		if _, err := os.Stat(filepath.Join(dir, "health.lua")); err != nil {
			return fmt.Errorf("cases for kind %s, which has no health check: %w", kind.Name(), err)
		}
		tests, err := gitops.ReadTests(dir)
		if err != nil {
			return err
		}
		byPath := map[string]gitops.Test{}
		for _, test := range tests.Tests {
			byPath[test.InputPath] = test
		}
		files, err := filepath.Glob(filepath.Join(from, kind.Name(), "*.yaml"))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, "testdata"), 0o755); err != nil {
			return err
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var c recorded
			if err := yaml.UnmarshalStrict(data, &c); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			object, err := yaml.Marshal(c.Object)
			if err != nil {
				return err
			}
			input := "testdata/" + filepath.Base(file)
			if err := os.WriteFile(filepath.Join(dir, input), object, 0o644); err != nil {
				return err
			}
			byPath[input] = gitops.Test{HealthStatus: c.HealthStatus, InputPath: input}
			fmt.Printf("%s/%s: %s\n", kind.Name(), strings.TrimSuffix(filepath.Base(file), ".yaml"), c.HealthStatus.Status)
		}
		tests.Tests = tests.Tests[:0]
		for _, test := range byPath {
			tests.Tests = append(tests.Tests, test)
		}
		if err := gitops.WriteTests(dir, tests); err != nil {
			return err
		}
	}
	return nil
}
