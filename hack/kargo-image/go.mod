// Checks of the Kargo controller's build: its own module, so that what
// they need stays out of kargo-gha's dependencies.
module github.com/kargo-gha/kargo-gha/hack/kargo-image

go 1.26.0
