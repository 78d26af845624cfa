// The Kargo integration: a package whose blank import registers the gha-*
// steps in a Kargo controller. It imports github.com/akuity/kargo, which is
// not published on the Go module proxy, so it builds only in a workspace
// that names a Kargo source tree (see scripts/kargo-test.sh and the README).
module github.com/kargo-gha/kargo-gha/kargo

go 1.26.0

require (
	github.com/akuity/kargo v1.11.2
	github.com/kargo-gha/kargo-gha v0.0.0
)
