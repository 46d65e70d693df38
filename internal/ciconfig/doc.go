// Package ciconfig holds the tests of the CI integrations under deploy/ci:
// the GitHub Actions composite action, decoded strictly against the
// composite action schema and its script run against the test environment,
// and the GitLab CI template. It has no code of its own.
package ciconfig
