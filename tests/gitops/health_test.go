package gitops

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// What Flux (kstatus) must report for each Argo CD health (README, "GitOps").
var kstatusFor = map[string]status.Status{
	"Healthy":     status.CurrentStatus,
	"Progressing": status.InProgressStatus,
	"Degraded":    status.FailedStatus,
}

// Any object without status: kstatus cannot tell one that will report status (Argo CD's
// check says Progressing until the operator's first status write: the one documented
// difference) from one that never does (a TenantGrant: Healthy).
const kstatusWithoutStatus = status.CurrentStatus

// Reasons the operator can set that no stack suite produces yet, and why. A reason
// leaves this list when a suite records a case for it (the test fails until it does).
var pendingReasons = map[string]string{}

func kinds(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(CustomizationsDir, Group))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, entry := range entries {
		if entry.IsDir() {
			kinds = append(kinds, entry.Name())
		}
	}
	return kinds
}

func script(t *testing.T, kind string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(KindDir(CustomizationsDir, kind), "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Every case of every kind: Argo CD's check gives the expected health, and kstatus the
// status the table pairs with it.
func TestHealthChecksAgreeWithKstatus(t *testing.T) {
	for _, kind := range kinds(t) {
		dir := KindDir(CustomizationsDir, kind)
		lua := script(t, kind)
		tests, err := ReadTests(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(tests.Tests) == 0 {
			t.Errorf("%s: no cases in health_test.yaml (make health-cases)", kind)
		}
		for _, test := range tests.Tests {
			t.Run(kind+"/"+test.InputPath, func(t *testing.T) {
				obj, err := ReadObject(filepath.Join(dir, test.InputPath))
				if err != nil {
					t.Fatal(err)
				}
				if got := obj["kind"]; got != kind {
					t.Fatalf("object kind %v in %s's cases", got, kind)
				}
				health, err := ArgoCDHealth(obj, lua)
				if err != nil {
					t.Fatalf("health.lua: %v", err)
				}
				if health != test.HealthStatus {
					t.Errorf("Argo CD health %+v, want %+v", health, test.HealthStatus)
				}
				result, err := status.Compute(&unstructured.Unstructured{Object: obj})
				if err != nil {
					t.Fatalf("kstatus: %v", err)
				}
				want, ok := kstatusFor[test.HealthStatus.Status]
				if !ok {
					t.Fatalf("no kstatus status pairs with %s", test.HealthStatus.Status)
				}
				if _, hasStatus := obj["status"]; !hasStatus {
					want = kstatusWithoutStatus
				}
				if result.Status != want {
					t.Errorf("kstatus %s (%s) for Argo CD %s, want %s", result.Status, result.Message, health.Status, want)
				}
			})
		}
	}
}

// Every object in testdata/ is a case, so a regeneration that drops one is seen.
func TestEveryTestdataObjectIsACase(t *testing.T) {
	for _, kind := range kinds(t) {
		dir := KindDir(CustomizationsDir, kind)
		tests, err := ReadTests(dir)
		if err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		for _, test := range tests.Tests {
			listed[test.InputPath] = true
		}
		files, _ := filepath.Glob(filepath.Join(dir, "testdata", "*.yaml"))
		for _, file := range files {
			if rel := "testdata/" + filepath.Base(file); !listed[rel] {
				t.Errorf("%s: %s is in no case of health_test.yaml", kind, rel)
			}
		}
	}
}

// Every kind the CRDs define has a health check.
func TestEveryKindHasAHealthCheck(t *testing.T) {
	files, err := filepath.Glob("../../crds/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in ../../crds (%v)", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(data, &crd); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if crd.Spec.Group != Group {
			continue
		}
		if _, err := os.Stat(filepath.Join(KindDir(CustomizationsDir, crd.Spec.Names.Kind), "health.lua")); err != nil {
			t.Errorf("kind %s has no health check: %v", crd.Spec.Names.Kind, err)
		}
	}
}

// The condition reasons the operator can set: crates/api/src/condition.rs, module reasons.
func operatorReasons(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../crates/api/src/condition.rs")
	if err != nil {
		t.Fatal(err)
	}
	source := string(data)
	start := strings.Index(source, "pub mod reasons {")
	if start < 0 {
		t.Fatal("condition.rs has no `pub mod reasons`")
	}
	end := strings.Index(source[start:], "\n}")
	module := source[start : start+end]
	var reasons []string
	for _, match := range regexp.MustCompile(`pub const [A-Z0-9_]+: &str = "([A-Za-z0-9]+)";`).FindAllStringSubmatch(module, -1) {
		reasons = append(reasons, match[1])
	}
	if len(reasons) == 0 {
		t.Fatal("no reasons parsed from condition.rs")
	}
	return reasons
}

// Every reason the operator can set appears in a condition of at least one case.
func TestEveryReasonHasACase(t *testing.T) {
	covered := map[string][]string{}
	for _, kind := range kinds(t) {
		files, _ := filepath.Glob(filepath.Join(KindDir(CustomizationsDir, kind), "testdata", "*.yaml"))
		for _, file := range files {
			obj, err := ReadObject(file)
			if err != nil {
				t.Fatal(err)
			}
			conditions, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
			for _, c := range conditions {
				if reason, ok := c.(map[string]any)["reason"].(string); ok {
					covered[reason] = append(covered[reason], kind+"/"+filepath.Base(file))
				}
			}
		}
	}
	var missing []string
	for _, reason := range operatorReasons(t) {
		_, pending := pendingReasons[reason]
		switch cases := covered[reason]; {
		case len(cases) == 0 && !pending:
			missing = append(missing, reason)
		case len(cases) > 0 && pending:
			t.Errorf("reason %s has cases now (%v): remove it from pendingReasons", reason, cases)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("reasons with no health case: %v; record one with gitops::health_case in the stack suite that produces it, then make health-cases", missing)
	}
}
