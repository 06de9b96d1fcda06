#!/usr/bin/env bash
# A short scripted demo on the embedded default (one SQLite file under SOA_HOME):
# configure on station BIURO, start, ask the status from BIURO and from KSIEGOWOSC,
# read the log list, stop. Uses a fresh SOA_HOME unless one is given.
set -euo pipefail
export SOA_HOME="${SOA_HOME:-$(mktemp -d -t soa-demo.XXXXXX)}"
# The example operation plugin (kind example_ping), for the host and the CLI alike.
export PYTHONPATH="$(cd "$(dirname "$0")" && pwd)/plugins${PYTHONPATH:+:$PYTHONPATH}"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "SOA_HOME=$SOA_HOME (embedded SQLite store: $SOA_HOME/soa.db)"
step soa --station BIURO status
echo 'demo-password' | step soa --station BIURO configure account 'FIRMA\soa-service' --password-stdin
step soa --station BIURO configure log-retention 14
step soa --station BIURO configure show
step soa --station BIURO status
step soa --station BIURO start
step soa --station BIURO status
step soa --station KSIEGOWOSC status
step soa --station KSIEGOWOSC --lang en status --json
printf '\n\033[1m$ soa --station KSIEGOWOSC stop   # refused: only BIURO may stop it\033[0m\n'
soa --station KSIEGOWOSC stop || echo "(exit code $?)"

# Scheduling: a company, a task of the example plugin every 2 s, its runs.
step soa --station BIURO companies add 'Firma A'
step soa --station KSIEGOWOSC tasks add example_ping --company 'Firma A' --name 'Ping' \
    --every 2s
echo "(waiting 7 s for the running host to pick the task up and run it)"
sleep 7
step soa runs list --limit 5
step soa --station BIURO stop
step soa --station BIURO status
step soa logs --limit 12
