package main

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/plldb/plldb/testfixtures/apps"
)

func TestLocalBannerShowsDeployedNames(t *testing.T) {
	_, _, out := startLocal(t, apps.HelloTemplate())
	banner := out.String()
	// Callers invoke a function by its deployed name, so the banner gives it next to the logical id.
	assert.Regexp(t, regexp.MustCompile(`(?m)^  PackageFunction \(local-orders-dev\) +python3\.12  pkg\.orders\.handler$`), banner)
	assert.Regexp(t, regexp.MustCompile(`(?m)^  HelloFunction +python3\.12  app\.handler$`), banner, "a function without FunctionName is its logical id")
	assert.Regexp(t, regexp.MustCompile(`(?m)^  NodeFunction +not served: runtime "nodejs20\.x"`), banner)
}

func TestLocalBannerNamesTheFunctionsLeftOutByFunctions(t *testing.T) {
	_, _, out := startLocal(t, apps.HelloTemplate(), "--functions", "HelloFunction")
	banner := out.String()
	assert.Regexp(t, regexp.MustCompile(`(?m)^  HelloFunction +python3\.12  app\.handler$`), banner)
	assert.Regexp(t, regexp.MustCompile(`(?m)^  PackageFunction \(local-orders-dev\) +not served: not in --functions$`), banner)
	assert.Regexp(t, regexp.MustCompile(`(?m)^  FailingFunction +not served: not in --functions$`), banner)
	assert.Regexp(t, regexp.MustCompile(`(?m)^  NodeFunction +not served: runtime "nodejs20\.x"`), banner, "the runtime is the reason, --functions or not")
}
