#!/bin/sh
# Blue/green test app: busybox httpd on 127.0.0.1:${APP_PORT} serving
#   /ready   "ok": what the healthcheck probes (absent when the version contains "never-ready")
#   /health  "ok", what the smoke checks ask (absent when the version contains "never-ready";
#            HTTP 500 when it contains "smoke500": ready, but its own health check fails)
#   /version the version ("broken" when it contains "smoke-fail")
#   /colour  blue or green
#   /tuning  ${TUNING}: a variable blue_green_deploy's spec sets, read back through the front
#            (the app is never ready when it contains "never-ready", as for a version)
# and exits 3 at once when the version contains "crash".
: "${APP_PORT:?APP_PORT must be set}" "${APP_VERSION:?APP_VERSION must be set}" "${APP_COLOUR:?APP_COLOUR must be set}"

case "$APP_VERSION" in
    *crash*) echo "app ${APP_VERSION}: cannot start (test crash)" >&2; exit 3 ;;
esac

www=/tmp/www
mkdir -p "$www"
case "$APP_VERSION ${TUNING:-}" in
    *never-ready*) ;;
    *smoke500*)
        printf 'ok' >"$www/ready"
        # busybox httpd answers a directory without index.html from cgi-bin/index.cgi (after a
        # redirect to /health/): the one way it has to answer a path with an error status.
        mkdir -p "$www/health" "$www/cgi-bin"
        printf '#!/bin/sh\nprintf "HTTP/1.0 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nunhealthy\\n"\n' \
            >"$www/cgi-bin/index.cgi"
        chmod 755 "$www/cgi-bin/index.cgi" ;;
    *) printf 'ok' >"$www/ready"; printf 'ok' >"$www/health" ;;
esac
case "$APP_VERSION" in
    *smoke-fail*) printf 'broken' >"$www/version" ;;
    *) printf '%s' "$APP_VERSION" >"$www/version" ;;
esac
printf '%s' "$APP_COLOUR" >"$www/colour"
printf '%s' "${TUNING:-}" >"$www/tuning"

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
