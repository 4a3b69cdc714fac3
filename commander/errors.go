package commander

import "github.com/scpgate/scpgate/internal/httpapi"

// Code classifies an API error; it is the "code" field of every error
// answer, over HTTP and NATS alike (package httpapi, shared with ingest).
type Code = httpapi.Code

// Error codes (see httpapi for their meaning and HTTP status).
const (
	CodeBadRequest  = httpapi.CodeBadRequest
	CodeUnknownType = httpapi.CodeUnknownType
	CodeBadParams   = httpapi.CodeBadParams
	CodeConflict    = httpapi.CodeConflict
	CodeQueueFull   = httpapi.CodeQueueFull
	CodeUnavailable = httpapi.CodeUnavailable
	CodeNotFound    = httpapi.CodeNotFound
	CodeInternal    = httpapi.CodeInternal
)

// Error is an error of the command API: a code for programs and a message
// for people. Err is the cause, for errors.Is/As and logs.
type Error = httpapi.Error

var (
	apiErr     = httpapi.Errorf
	asAPIError = httpapi.AsError
)
