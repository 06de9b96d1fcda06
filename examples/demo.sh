#!/usr/bin/env bash
# A short scripted demo on the embedded default (one SQLite file under SOA_HOME):
# configure on station BIURO, start, ask the status from BIURO and from KSIEGOWOSC,
# read the log list, stop. Uses a fresh SOA_HOME unless one is given.
set -euo pipefail
export SOA_HOME="${SOA_HOME:-$(mktemp -d -t soa-demo.XXXXXX)}"
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
step soa --station BIURO stop
step soa --station BIURO status
step soa logs
