// Package deploy holds what runs scpgate in containers: the NATS node
// configurations (deploy/nats), the HAProxy configuration (deploy/haproxy)
// and the container health probe (deploy/healthcheck). The repository
// root's Dockerfile and docker-compose.yml use them.
//
// The package has no code of its own, only tests: they check that
// docker-compose.yml, haproxy.cfg and the NATS configurations agree with
// each other and with what the scpgate binary accepts, run the HAProxy
// configuration for real in front of three driver processes, and run a
// three-node JetStream cluster that loses its stream leader under load.
package deploy
