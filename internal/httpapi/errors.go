// Package httpapi is the HTTP edge shared by the roles: the error model
// (a code for programs and a message for people), the one way to write a
// JSON answer, and the /healthz and /readyz probes.
package httpapi

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an API error; it is the "code" field of every error
// answer (schema api.json#/$defs/error), over HTTP and NATS alike.
type Code string

// Error codes.
const (
	// CodeBadRequest: malformed JSON, unknown field or query parameter,
	// body too large, bad serial, id, wait, limit, time or TTL syntax.
	CodeBadRequest Code = "bad_request"
	// CodeUnknownType: the command type is not one of commands.Types.
	CodeUnknownType Code = "unknown_type"
	// CodeBadParams: a command parameter (or ttl, idempotency_key) is
	// missing or out of range; the message names it.
	CodeBadParams Code = "bad_params"
	// CodeConflict: the idempotency key was used for a different command.
	CodeConflict Code = "conflict"
	// CodeQueueFull: the controller already has its cap of pending
	// commands.
	CodeQueueFull Code = "queue_full"
	// CodeUnavailable: NATS or JetStream did not answer in time.
	CodeUnavailable Code = "unavailable"
	// CodeNotFound: no such command, result, controller or endpoint.
	CodeNotFound Code = "not_found"
	// CodeInternal: a bug or a corrupt stored document.
	CodeInternal Code = "internal"
)

// HTTPStatus returns the HTTP status of an error with code c.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeBadRequest, CodeUnknownType, CodeBadParams:
		return http.StatusBadRequest
	case CodeConflict:
		return http.StatusConflict
	case CodeQueueFull:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	case CodeNotFound:
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// Error is an error of an API: a code for programs and a message for
// people. Err is the cause, for errors.Is/As and logs.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Body returns the JSON document of the error.
func (e *Error) Body() ErrorBody { return ErrorBody{Error: e.Message, Code: e.Code} }

// ErrorBody is the JSON of an error answer:
// {"error": "<message>", "code": "<code>"}.
type ErrorBody struct {
	Error string `json:"error"`
	Code  Code   `json:"code"`
}

// Errorf returns an *Error with code, cause err (may be nil) and the
// formatted message.
func Errorf(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// AsError turns any error into an *Error; an error that is not one
// already is internal, with its own text as the message.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error(), Err: err}
}
