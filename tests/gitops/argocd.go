package gitops

import (
	"context"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Argo CD's health status codes (gitops-engine pkg/health).
var argocdStatuses = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true,
	"Healthy": true, "Degraded": true, "Missing": true,
}

// ArgoCDHealth runs a health.lua the way Argo CD runs a health customization from
// argocd-cm. Argo CD's own runner (util/lua in github.com/argoproj/argo-cd) is not
// imported: its module pulls in most of Argo CD and Kubernetes. This replicates its
// calling convention (VM.runLua and VM.ExecuteHealthLua, v2.x and v3.x): a fresh
// gopher-lua state with the standard libraries skipped (useOpenLibs is off for argocd-cm
// scripts) except package, base and table (Argo CD adds a reduced os, which these
// scripts do not use, so a script that needs it fails here), the object as the global
// `obj` (numbers as Lua numbers, as Argo CD's decodeValue does), a one-second deadline,
// and the returned table read as {status, message}; a status Argo CD does not know
// becomes Unknown, anything but a table is an error.
func ArgoCDHealth(obj map[string]any, script string) (HealthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return HealthStatus{}, fmt.Errorf("open %s: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(script); err != nil {
		return HealthStatus{}, err
	}
	table, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return HealthStatus{}, fmt.Errorf("expect table output from Lua script, not %s", l.Get(-1).Type())
	}
	health := HealthStatus{
		Status:  stringField(table, "status"),
		Message: stringField(table, "message"),
	}
	if !argocdStatuses[health.Status] {
		return HealthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return health, nil
}

func stringField(table *lua.LTable, key string) string {
	if s, ok := table.RawGetString(key).(lua.LString); ok {
		return string(s)
	}
	return ""
}

// decodeValue turns a decoded JSON/YAML value into a Lua value, as Argo CD does.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		array := l.CreateTable(len(v), 0)
		for _, item := range v {
			array.Append(decodeValue(l, item))
		}
		return array
	case map[string]any:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return table
	}
	return lua.LNil
}
