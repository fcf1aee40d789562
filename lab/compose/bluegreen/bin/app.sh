#!/bin/sh
# Blue/green test app: busybox httpd on 127.0.0.1:${APP_PORT} serving
#   /health  "ok" (absent when the version contains "never-ready")
#   /version the version ("broken" when it contains "smoke-fail")
#   /colour  blue or green
# and exits 3 at once when the version contains "crash".
: "${APP_PORT:?APP_PORT must be set}" "${APP_VERSION:?APP_VERSION must be set}" "${APP_COLOUR:?APP_COLOUR must be set}"

case "$APP_VERSION" in
    *crash*) echo "app ${APP_VERSION}: cannot start (test crash)" >&2; exit 3 ;;
esac

www=/tmp/www
mkdir -p "$www"
case "$APP_VERSION" in
    *never-ready*) ;;
    *) printf 'ok' >"$www/health" ;;
esac
case "$APP_VERSION" in
    *smoke-fail*) printf 'broken' >"$www/version" ;;
    *) printf '%s' "$APP_VERSION" >"$www/version" ;;
esac
printf '%s' "$APP_COLOUR" >"$www/colour"

busybox httpd -f -p "127.0.0.1:${APP_PORT}" -h "$www" &
pid=$!
# PID 1 of a container ignores SIGTERM unless it handles it; forward it so
# stop and down take milliseconds instead of the grace period.
trap 'kill "$pid" 2>/dev/null; exit 0' TERM INT
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) INFO app ${APP_VERSION} (${APP_COLOUR}): listening on 127.0.0.1:${APP_PORT}"
wait "$pid"
status=$?
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) ERROR app: httpd exited with status ${status}"
exit "$status"
