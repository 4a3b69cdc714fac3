package commander

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/scpgate/scpgate/schema"
)

// Names of the NATS micro service.
const (
	// ServiceName is the micro service name.
	ServiceName = "scpgate-commander"
	// ServiceVersion is the version of its request and answer schema.
	ServiceVersion = "1.0.0"
	// SubjectPrefix prefixes every endpoint subject:
	// scpgate.commander.submit, .get and .controllers.
	SubjectPrefix = "scpgate.commander"
)

// MicroSubmit is the request of the "submit" endpoint: a SubmitRequest with
// the controller serial and the wait as a Go duration.
type MicroSubmit struct {
	Serial string `json:"controller"`
	Wait   string `json:"wait,omitempty"`
	SubmitRequest
}

// MicroGet is the request of the "get" endpoint.
type MicroGet struct {
	ID string `json:"id"`
}

// MicroControllers is the request of the "controllers" endpoint: with a
// controller serial it answers that controller's Controller, else a
// ControllerList page. An empty body lists the first page.
type MicroControllers struct {
	Serial string `json:"controller,omitempty"`
	After  string `json:"after,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// Register adds the micro service "scpgate-commander" on nc with the
// endpoints submit, get and controllers (subjects under SubjectPrefix, in
// the default queue group, so several commanders share the load). Each
// endpoint's metadata names its request_schema, response_schema (one, or
// several separated by spaces) and error_schema: URLs of the files in
// schema/ (schema.BaseURL). Each
// answers the same JSON as the HTTP API; an error answers with the
// Nats-Service-Error-Code header set to the HTTP status, the
// Nats-Service-Error header to the message, and the error JSON
// {"error","code"} as body. Close stops the service.
//
// Requests are handled concurrently (up to Options.MaxInFlight): a
// submission that waits for its result does not hold up the others.
func (s *Service) Register(nc *nats.Conn) (micro.Service, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        ServiceName,
		Version:     ServiceVersion,
		Description: "submit commands to controllers and read their status and presence",
	})
	if err != nil {
		return nil, fmt.Errorf("add micro service %s: %w", ServiceName, err)
	}
	g := svc.AddGroup(SubjectPrefix)
	endpoints := []struct {
		name     string
		fn       func(context.Context, []byte) (any, error)
		req, res string
	}{
		{"submit", s.microSubmit, "command-request.json#/$defs/microSubmit", "command.json"},
		{"get", s.microGet, "command-request.json#/$defs/microGet", "command.json"},
		{"controllers", s.microControllers, "command-request.json#/$defs/microControllers",
			"api.json#/$defs/controller api.json#/$defs/controllerList"},
	}
	for _, e := range endpoints {
		meta := map[string]string{
			"request_schema":  schema.BaseURL + e.req,
			"response_schema": prefixAll(schema.BaseURL, e.res),
			"error_schema":    schema.BaseURL + "api.json#/$defs/error",
			"docs":            "docs/api.md",
		}
		if err := g.AddEndpoint(e.name, s.microHandler(e.fn), micro.WithEndpointMetadata(meta)); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("add endpoint %s: %w", e.name, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = svc.Stop()
		return nil, fmt.Errorf("register %s: %w", ServiceName, nats.ErrConnectionClosed)
	}
	s.services = append(s.services, svc)
	return svc, nil
}

// prefixAll prefixes every space-separated word of list with base.
func prefixAll(base, list string) string {
	words := strings.Fields(list)
	for i, w := range words {
		words[i] = base + w
	}
	return strings.Join(words, " ")
}

// microHandler runs fn for each request in its own goroutine, bounded by
// the in-flight semaphore, under the Service's context.
func (s *Service) microHandler(fn func(context.Context, []byte) (any, error)) micro.HandlerFunc {
	return func(req micro.Request) {
		if len(req.Data()) > MaxBodyBytes {
			respondError(req, apiErr(CodeBadRequest, nil, "request body over %d KiB", MaxBodyBytes>>10))
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			respondError(req, apiErr(CodeUnavailable, nil, "commander is shutting down"))
			return
		}
		s.wg.Add(1) // under mu, so never after Close has started waiting
		s.mu.Unlock()
		select {
		case s.inflight <- struct{}{}: // a full semaphore holds up the subscription
		case <-s.ctx.Done():
			s.wg.Done()
			respondError(req, apiErr(CodeUnavailable, nil, "commander is shutting down"))
			return
		}
		go func() {
			defer func() { <-s.inflight; s.wg.Done() }()
			ctx, cancel := context.WithTimeout(s.ctx, s.opts.MaxWait+4*s.opts.Timeout)
			defer cancel()
			v, err := fn(ctx, req.Data())
			if err != nil {
				s.logMicroError(req, err)
				respondError(req, err)
				return
			}
			if err := req.RespondJSON(v); err != nil {
				s.log.Debug().Err(err).Str("subject", req.Subject()).Msg("micro respond")
			}
		}()
	}
}

func (s *Service) logMicroError(req micro.Request, err error) {
	if e := asAPIError(err); e.Code == CodeInternal {
		s.log.Error().Err(err).Str("subject", req.Subject()).Msg("internal error")
	}
}

func respondError(req micro.Request, err error) {
	e := asAPIError(err)
	body, _ := json.Marshal(e.Body())
	_ = req.Error(strconv.Itoa(e.Code.HTTPStatus()), e.Message, body)
}

func (s *Service) microSubmit(ctx context.Context, data []byte) (any, error) {
	var m MicroSubmit
	if err := decodeBody(bytes.NewReader(data), &m); err != nil {
		return nil, err
	}
	if m.Wait != "" {
		d, err := time.ParseDuration(m.Wait)
		if err != nil {
			return nil, apiErr(CodeBadRequest, err, "wait %q: not a duration like \"5s\"", m.Wait)
		}
		m.SubmitRequest.Wait = d
	}
	return s.Submit(ctx, m.Serial, m.SubmitRequest)
}

func (s *Service) microGet(ctx context.Context, data []byte) (any, error) {
	var m MicroGet
	if err := decodeBody(bytes.NewReader(data), &m); err != nil {
		return nil, err
	}
	return s.Get(ctx, m.ID)
}

func (s *Service) microControllers(ctx context.Context, data []byte) (any, error) {
	var m MicroControllers
	if len(bytes.TrimSpace(data)) > 0 {
		if err := decodeBody(bytes.NewReader(data), &m); err != nil {
			return nil, err
		}
	}
	if m.Serial != "" {
		return s.Controller(ctx, m.Serial)
	}
	return s.Controllers(ctx, m.After, m.Limit)
}
