#!/bin/sh
# VitalStream alarm engine stand-in: one log line every ALARM_INTERVAL seconds,
# the first and then every ERROR_EVERY-th of them an ERROR, so log-review tasks
# have something real to count in `docker logs`.
interval="${ALARM_INTERVAL:-1}"
every="${ERROR_EVERY:-5}"

ts() { date -u +%Y-%m-%dT%H:%M:%SZ; }
# PID 1 of a container ignores SIGTERM unless it handles it: stop at once.
trap 'echo "$(ts) INFO alarm-engine: stopping"; exit 0' TERM INT

echo "$(ts) INFO alarm-engine: started (interval=${interval}s, error every ${every} ticks)"
n=0
while :; do
    n=$((n + 1))
    if [ $(((n - 1) % every)) -eq 0 ]; then
        echo "$(ts) ERROR alarm-engine: alarm $n on bed $((n % 12 + 1)) not acknowledged within 120s (lead-off)"
    else
        echo "$(ts) INFO alarm-engine: tick $n, 3 active alarms evaluated"
    fi
    # Sleep in the background so the trap runs as soon as a signal arrives.
    sleep "$interval" &
    wait $!
done
