package streams

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// IdentityBucket maps a serial to what the drivers know of the controller
// that uses it: when it was first seen and whether it ever presented a
// client certificate (driver.Identity). Only drivers use it, and only they
// create it (EnsureIdentity); it is kept as long as the stream lives.
const IdentityBucket = "scp_identity"

// IdentityBucketConfig returns the configuration of the scp_identity
// bucket.
func IdentityBucketConfig(cfg Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: IdentityBucket, Description: "serial -> first seen, certificate presented",
		History: 1, Storage: cfg.Storage, Replicas: cfg.Replicas}
}

// EnsureIdentity creates the scp_identity bucket, or binds to it when it
// exists (its settings are left as they are).
func EnsureIdentity(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, IdentityBucketConfig(cfg))
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, IdentityBucket)
	}
	if err != nil {
		return nil, fmt.Errorf("create or bind bucket %s: %w", IdentityBucket, err)
	}
	return kv, nil
}
