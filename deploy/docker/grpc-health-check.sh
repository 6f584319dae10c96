#!/bin/sh
# Container health check for the stilts coordinator, over gRPC, with nothing but curl.
#
#   grpc-health-check [HOST:PORT]        (default 127.0.0.1:50051)
#
# It calls grpc.health.v1.Health/Check (empty service name = the whole server) over cleartext
# HTTP/2 and reads the grpc-status trailer:
#   grpc-status 0 and the reply says SERVING (status = 1)  -> healthy (exit 0)
#   grpc-status 12 (UNIMPLEMENTED)                         -> healthy (exit 0): the server is up and
#       answered a gRPC call; it just serves no health service (stilts at the time of writing)
#   anything else (refused, timeout, NOT_SERVING, ...)     -> unhealthy (exit 1)
# Kubernetes does not need this script: the Helm chart uses the kubelet's own probes.
set -u
addr="${1:-127.0.0.1:50051}"

# One gRPC frame holding an empty HealthCheckRequest: flag 0 + length 0 (five zero bytes).
# Headers, body and trailers all go to stdout and are read as hex, so no file is written.
hex=$(printf '\000\000\000\000\000' |
  curl --silent --http2-prior-knowledge --max-time 3 -X POST \
    -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @- \
    --dump-header - --output - "http://${addr}/grpc.health.v1.Health/Check" 2>/dev/null |
  od -An -v -tx1 | tr -d ' \n')

# "grpc-status: 0\r", "grpc-status: 12\r" and the SERVING reply frame (00 00000002 08 01), in hex.
status_ok=677270632d7374617475733a20300d
status_unimplemented=677270632d7374617475733a2031320d
serving=00000000020801

case "$hex" in
  *"$status_unimplemented"*) exit 0 ;;
esac
case "$hex" in
  *$serving*"$status_ok"*) exit 0 ;;
esac
echo "coordinator at ${addr} is not answering gRPC health checks" >&2
exit 1
