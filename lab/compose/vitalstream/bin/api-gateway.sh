#!/bin/sh
# VitalStream API gateway stand-in: busybox httpd serving the static tree in
# /www on 127.0.0.1 only (the container shares the host's network namespace).
: "${API_PORT:?API_PORT must be set}"

busybox httpd -f -p "127.0.0.1:${API_PORT}" -h /www &
pid=$!
# PID 1 of a container ignores SIGTERM unless it handles it; forward it so
# `docker-compose down` takes milliseconds instead of the 10 s grace period.
trap 'kill "$pid" 2>/dev/null; exit 0' TERM INT
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) INFO api-gateway: listening on 127.0.0.1:${API_PORT}"
wait "$pid"
status=$?
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) ERROR api-gateway: httpd exited with status ${status}"
exit "$status"
