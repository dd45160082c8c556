package instrument

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// plldbVars are the variables Instrument adds besides AWS_LAMBDA_EXEC_WRAPPER.
var plldbVars = []string{EnvPrevWrapper, EnvEndpoint, EnvSession, EnvFunctionKey, EnvAudience, EnvLogicalID, EnvStrict, EnvCredentials, EnvSelective, EnvKnockKeys, EnvKnockStack, EnvSessions}

// merged is a function's configuration with plldb's own changes taken out and everything else left as someone
// else made it since attach: what a restore writes when it cannot put the snapshot back as it is.
type merged struct {
	env     map[string]string
	layers  []string
	timeout int32
	// kept lists what of the other person's changes stays, for people ("description", "variables FEATURE").
	kept []string
	// problem says why plldb cannot tell its changes from theirs; "" when the merge is possible.
	problem string
	// noop: nothing of plldb's is left on the function.
	noop bool
}

// merge takes plldb's changes out of cur, keeping whatever else changed since snap was taken:
//   - plldb's variables go back to the snapshot's values (or go), AWS_LAMBDA_EXEC_WRAPPER=plldb's wrapper goes
//     back to the function's previous wrapper (or goes);
//   - the plldb layer goes; every other layer stays, in order;
//   - the 900 s timeout goes back to the snapshot's; a timeout someone set since stays.
//
// It is impossible, and merged.problem says why, when the other person changed plldb's own settings in a way
// that leaves their intent unknown: a different wrapper in AWS_LAMBDA_EXEC_WRAPPER or PLLDB_PREV_WRAPPER, or
// new layers among which the plldb layer cannot be told apart.
func (in *Instrumenter) merge(snap Snapshot, cur *fnConfig) merged {
	own := snap.Environment
	vars := cur.vars()
	m := merged{env: make(map[string]string, len(vars)), timeout: cur.timeout()}
	maps.Copy(m.env, vars)

	wantPrev := own[EnvPrevWrapper]
	if w := snap.ExecWrapper; w != "" && w != WrapperPath {
		wantPrev = w
	}
	wrapper, hasWrapper := vars[EnvExecWrapper]
	ownWrapper, hadWrapper := own[EnvExecWrapper]
	switch {
	case hasWrapper && wrapper == WrapperPath:
		if vars[EnvPrevWrapper] != wantPrev {
			m.problem = fmt.Sprintf("%s was changed since attach, so plldb cannot tell which wrapper the function should go back to", EnvPrevWrapper)
		}
		if hadWrapper && ownWrapper != WrapperPath {
			m.env[EnvExecWrapper] = ownWrapper
		} else {
			delete(m.env, EnvExecWrapper)
		}
	case hasWrapper == hadWrapper && wrapper == ownWrapper:
		// Put back by someone already.
	default:
		m.problem = fmt.Sprintf("%s was changed from plldb's wrapper to %q since attach, so plldb cannot tell its change from theirs", EnvExecWrapper, wrapper)
	}
	for _, k := range plldbVars {
		if v, ok := own[k]; ok {
			m.env[k] = v
		} else {
			delete(m.env, k)
		}
	}

	plldbLayers := in.plldbLayers(snap, cur)
	if plldbLayers == nil {
		m.problem = join(m.problem, "layers were added since attach, so plldb cannot tell its layer from theirs")
	}
	for _, l := range cur.layerARNs() {
		if !slices.Contains(plldbLayers, l) || slices.Contains(snap.Layers, l) {
			m.layers = append(m.layers, l)
		}
	}
	if m.layers == nil {
		m.layers = []string{}
	}
	if m.timeout == DebugTimeout {
		m.timeout = snap.Timeout
	}

	m.noop = maps.Equal(m.env, vars) && slices.Equal(m.layers, cur.layerARNs()) && m.timeout == cur.timeout()
	m.kept = keptChanges(snap, cur, m)
	return m
}

// plldbLayers are the layer versions that may be plldb's on cur: the one the snapshot recorded, else the
// instrumenter's, else the one layer added since the snapshot. nil means it cannot tell.
func (in *Instrumenter) plldbLayers(snap Snapshot, cur *fnConfig) []string {
	switch {
	case snap.PlldbLayer != "":
		return []string{snap.PlldbLayer}
	case in.Layers.X86_64 != "" || in.Layers.Arm64 != "":
		return []string{in.Layers.X86_64, in.Layers.Arm64}
	}
	var added []string
	for _, l := range cur.layerARNs() {
		if !slices.Contains(snap.Layers, l) {
			added = append(added, l)
		}
	}
	if len(added) > 1 {
		return nil
	}
	return append([]string{}, added...)
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// keptChanges names what differs between the snapshot and the merged configuration: the other person's
// changes. Variables are named, never their values, which may be secrets.
func keptChanges(snap Snapshot, cur *fnConfig, m merged) []string {
	var kept []string
	if before, err := parseConfig(snap.Config); err == nil && len(snap.Config) > 0 {
		for _, f := range []struct {
			what     string
			was, now string
		}{
			{"description", before.Description, cur.Description},
			{"handler", before.Handler, cur.Handler},
			{"runtime", before.Runtime, cur.Runtime},
			{"role", before.Role, cur.Role},
			{"code", before.CodeSha256, cur.CodeSha256},
			{"memory size", fmt.Sprint(ptrValue(before.MemorySize)), fmt.Sprint(ptrValue(cur.MemorySize))},
			{"KMS key", before.KMSKeyArn, cur.KMSKeyArn},
			{"architectures", strings.Join(before.Architectures, ","), strings.Join(cur.Architectures, ",")},
		} {
			if f.was != f.now {
				kept = append(kept, f.what)
			}
		}
	}
	var names []string
	for k := range m.env {
		if v, ok := snap.Environment[k]; !ok || v != m.env[k] {
			names = append(names, k)
		}
	}
	for k := range snap.Environment {
		if _, ok := m.env[k]; !ok {
			names = append(names, k+" (removed)")
		}
	}
	if len(names) > 0 {
		slices.Sort(names)
		kept = append(kept, "variables "+strings.Join(names, ", "))
	}
	var added, removed []string
	for _, l := range m.layers {
		if !slices.Contains(snap.Layers, l) {
			added = append(added, l)
		}
	}
	for _, l := range snap.Layers {
		if !slices.Contains(m.layers, l) {
			removed = append(removed, l)
		}
	}
	switch {
	case len(added) > 0 && len(removed) > 0:
		kept = append(kept, "layers added "+strings.Join(added, ", ")+", removed "+strings.Join(removed, ", "))
	case len(added) > 0:
		kept = append(kept, "layers added "+strings.Join(added, ", "))
	case len(removed) > 0:
		kept = append(kept, "layers removed "+strings.Join(removed, ", "))
	case !slices.Equal(m.layers, snap.Layers):
		kept = append(kept, "layer order")
	}
	if m.timeout != snap.Timeout {
		kept = append(kept, fmt.Sprintf("timeout %d s", m.timeout))
	}
	return kept
}

func ptrValue(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// mergedMessage is the Message of a Merged result.
func mergedMessage(kept []string) string {
	theirs := "their other settings"
	if len(kept) > 0 {
		theirs = strings.Join(kept, "; ")
	}
	return "changed by someone else since attach: plldb took out only its own changes (its variables, wrapper, layer and timeout) and kept theirs: " + theirs
}
