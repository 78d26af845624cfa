// Package schemas holds one JSON Schema per step configuration, as Kargo
// keeps its built-in steps' schemas.
package schemas

import _ "embed"

// DispatchWorkflow describes the gha-dispatch-workflow step's config block.
//
//go:embed gha-dispatch-workflow-config.json
var DispatchWorkflow []byte

// WaitForWorkflow describes the gha-wait-for-workflow step's config block.
//
//go:embed gha-wait-for-workflow-config.json
var WaitForWorkflow []byte
