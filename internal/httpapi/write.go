package httpapi

import (
	"encoding/json"
	"net/http"
)

// WriteJSON answers v as JSON with status, never cached. A v that does
// not encode answers 500 with an internal error instead.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(ErrorBody{Error: "encode response: " + err.Error(), Code: CodeInternal})
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // the client may have gone
}

// WriteError answers err as an error document with its code's status;
// an error that is not an *Error answers 500 internal (see AsError).
func WriteError(w http.ResponseWriter, err error) {
	e := AsError(err)
	WriteJSON(w, e.Code.HTTPStatus(), e.Body())
}
