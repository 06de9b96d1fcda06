#!/usr/bin/env bash
# A short scripted demo on the embedded default (one SQLite file under SOA_HOME):
# configure on station BIURO, start, ask the status from BIURO and from KSIEGOWOSC,
# add a task of the example plugin, then load an example company and preview and run the
# five ERP operations into a local mail and SMS catcher; send a second company's
# recurring invoices to KSeF (the local KSeF simulator) and e-mail them with their KSeF
# numbers; synchronise the first with the wszystko.pl marketplace of the partner
# simulator (a full, then a differential run); read the log list, stop. Uses a fresh
# SOA_HOME unless one is given.
set -euo pipefail
export SOA_HOME="${SOA_HOME:-$(mktemp -d -t soa-demo.XXXXXX)}"
# The example operation plugin (kind example_ping), for the host and the CLI alike.
export PYTHONPATH="$(cd "$(dirname "$0")" && pwd)/plugins${PYTHONPATH:+:$PYTHONPATH}"
# The host's HTTP API and dashboard on a free port (the default is 127.0.0.1:8765).
export SOA_API_BIND="${SOA_API_BIND:-127.0.0.1:0}"
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
# The same status over HTTP, as the ERP asks for it: the URL from the status, the token
# from `soa api-token` (made at first start in $SOA_HOME/api-token, mode 0600).
API_URL=$(soa --station BIURO status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_url"])')
printf '\n\033[1m$ GET %s/api/status?station=KSIEGOWOSC&lang=en  (Authorization: Bearer $(soa api-token))\033[0m\n' "$API_URL"
python3 - "$API_URL" "$(soa api-token)" <<'PY'
import json, sys, urllib.request
url, token = sys.argv[1], sys.argv[2]
request = urllib.request.Request(f"{url}/api/status?station=KSIEGOWOSC&lang=en",
                                 headers={"Authorization": f"Bearer {token}"})
print(json.dumps(json.load(urllib.request.urlopen(request, timeout=10)), indent=2))
PY
echo "Dashboard: $API_URL (log in with the token that 'soa api-token' prints)"
printf '\n\033[1m$ soa --station KSIEGOWOSC stop   # refused: only BIURO may stop it\033[0m\n'
soa --station KSIEGOWOSC stop || echo "(exit code $?)"

# Scheduling: a company, a task of the example plugin every 2 s, its runs.
step soa --station BIURO companies add 'Firma A'
step soa --station KSIEGOWOSC tasks add example_ping --company 'Firma A' --name 'Ping' \
    --every 2s
echo "(waiting 7 s for the running host to pick the task up and run it)"
sleep 7
step soa runs list --limit 5

# The ERP operations on an example company, mails and SMS caught locally (nothing is
# really sent): the catcher listens on 127.0.0.1:2525 (SMTP) and :8025 (SMS gateway).
AS_OF=2026-12-15T08:00   # the demo acts as of this instant (Polish time)
soa simulate mail --smtp-port 2525 --sms-port 8025 &
CATCHER=$!
trap 'kill $CATCHER 2>/dev/null || true' EXIT
sleep 1
kill -0 $CATCHER 2>/dev/null || { echo "the mail catcher could not start (see above)"; exit 1; }
step soa --station BIURO companies add 'Firma Demo'
step soa erp load 'Firma Demo' "$(dirname "$0")/company/firma-demo.json"
TASKS=()
for kind in recurring_invoices invoice_mailing dunning recurring_orders task_reminders; do
  TASKS+=("$(soa tasks add "$kind" --company 'Firma Demo' --name "$kind" --daily 06:00)")
done
step soa tasks list --company 'Firma Demo'
step soa erp preview 'Firma Demo' recurring_invoices --as-of "$AS_OF"
step soa erp preview 'Firma Demo' dunning --as-of "$AS_OF"
wait_for_run() {  # the latest run of task $1 succeeded or failed
  for _ in $(seq 120); do
    status=$(soa runs list --task "$1" --limit 1 --json | python3 -c \
      'import json,sys; runs=json.load(sys.stdin); print(runs[0]["status"] if runs else "")')
    case "$status" in succeeded|failed) return ;; esac
    sleep 0.5
  done
}
for task in "${TASKS[@]}"; do
  # one after another: invoices first, so that mailing finds them
  soa tasks run-now "$task" --as-of "$AS_OF" >/dev/null
  wait_for_run "$task"
done
step soa runs list --limit 5
step soa erp invoices 'Firma Demo'
step soa erp service-orders 'Firma Demo'
step soa erp dunning-history 'Firma Demo'
step soa erp outbox 'Firma Demo'
printf '\n\033[1m$ soa simulate mail --list   # what the customers would have received\033[0m\n'
soa simulate mail --list | python3 -c 'import json,sys
for m in json.load(sys.stdin):
    print(m["channel"].ljust(6), "to", m["to"].ljust(32), m["subject"] or m["text"][:70])'

# KSeF, the national e-invoicing system, played by the local KSeF simulator (KSeF API
# 2.0 in memory on a free port of 127.0.0.1; nothing leaves this machine). A second
# company issues its recurring invoices now (KSeF takes no invoice dated after today),
# sends them to KSeF in the same run and e-mails each once KSeF has given its number.
soa simulate ksef --port 0 >"$SOA_HOME/ksef-simulator.out" &
KSEF_SIM=$!
trap 'kill $CATCHER $KSEF_SIM 2>/dev/null || true' EXIT
KSEF_URL=
for _ in $(seq 50); do
  KSEF_URL=$(sed -n 's/^KSeF simulator: \(http[^ ]*\).*/\1/p' "$SOA_HOME/ksef-simulator.out")
  [ -n "$KSEF_URL" ] && break
  sleep 0.2
done
[ -n "$KSEF_URL" ] || { echo "the KSeF simulator could not start (see above)"; exit 1; }
echo "KSeF simulator: $KSEF_URL"
step soa --station BIURO companies add 'Firma KSeF'
step soa erp load 'Firma KSeF' "$(dirname "$0")/company/firma-demo-ksef.json"
# A KSeF token for the seller's NIP, issued by the simulator (in real KSeF a person makes
# one in KSeF's certificate and permission module; after 2026 log in with a certificate:
# soa ksef configure ... --certificate CERT.pem --key KEY.pem).
printf '\n\033[1m$ POST %s/_sim/tokens {"nip": "7251801126"}   # a token for the trial\033[0m\n' "$KSEF_URL"
KSEF_TOKEN=$(python3 - "$KSEF_URL" <<'PY'
import json, sys, urllib.request
body = json.dumps({"nip": "7251801126"}).encode()
answer = urllib.request.urlopen(urllib.request.Request(
    f"{sys.argv[1]}/_sim/tokens", data=body,
    headers={"Content-Type": "application/json"}), timeout=10)
print(json.load(answer)["token"])
PY
)
echo "(a token of ${#KSEF_TOKEN} characters; it is stored encrypted and never printed)"
echo "$KSEF_TOKEN" | step soa ksef configure 'Firma KSeF' --env URL --url "$KSEF_URL" \
    --token-stdin --since 2026-11-01
step soa ksef status 'Firma KSeF'
KSEF_TASK=$(soa tasks add recurring_invoices --company 'Firma KSeF' --name 'Faktury KSeF' \
    --daily 06:00)
printf '\n\033[1m$ soa tasks run-now %s   # now: issue, send to KSeF, e-mail\033[0m\n' "$KSEF_TASK"
soa tasks run-now "$KSEF_TASK" >/dev/null
wait_for_run "$KSEF_TASK"
step soa logs --company 'Firma KSeF' --limit 1
step soa erp invoices 'Firma KSeF'
printf '\n\033[1m$ soa erp invoices %s --json   # the KSeF fields, numbers in full\033[0m\n' "'Firma KSeF'"
soa erp invoices 'Firma KSeF' --json | python3 -c 'import json,sys
for i in json.load(sys.stdin):
    print(i["number"].ljust(14), (i["ksef_status"] or "-").ljust(10), i["ksef_number"] or "",
          i["ksef_accepted_at"] or "")'
step soa ksef status 'Firma KSeF'
KSEF_FIRST=$(soa erp invoices 'Firma KSeF' --json | python3 -c \
  'import json,sys; print(json.load(sys.stdin)[0]["number"])')
step soa ksef show 'Firma KSeF' "$KSEF_FIRST"
step soa erp outbox 'Firma KSeF'

# A partner synchronisation: the wszystko.pl marketplace, played by the local partner
# simulator (all seven partners' contracts on 127.0.0.1:8030; nothing leaves this
# machine). One full synchronisation, then a differential one after a price change.
soa simulate partners --port 8030 &
PARTNERS=$!
trap 'kill $CATCHER $KSEF_SIM $PARTNERS 2>/dev/null || true' EXIT
sleep 1
kill -0 $PARTNERS 2>/dev/null || { echo "the partner simulator could not start (see above)"; exit 1; }
step soa erp load 'Firma Demo' "$(dirname "$0")/company/firma-demo-sklep.json"
step soa sync configure 'Firma Demo' wszystkopl --url http://127.0.0.1:8030/wszystkopl \
    --set warehouses=MAG,SKLEP --set price_type=DETAL --set series=WSZ \
    --set shipping_item=WYSYŁKA
step soa sync login 'Firma Demo' wszystkopl
# two orders waiting on the marketplace (the simulator makes them up)
python3 - <<'PY'
import json, urllib.request
body = json.dumps({"partner": "wszystkopl", "collection": "sales", "count": 2,
                   "products": ["KUBEK", "PORADNIK"]}).encode()
urllib.request.urlopen(urllib.request.Request(
    "http://127.0.0.1:8030/_sim/generate", data=body,
    headers={"Content-Type": "application/json"}), timeout=10)
PY
SYNC=$(soa tasks add sync_wszystkopl --company 'Firma Demo' --name 'wszystko.pl' --every 15m)
soa tasks run-now "$SYNC" >/dev/null && wait_for_run "$SYNC"
step soa sync status 'Firma Demo'
step soa erp sales-orders 'Firma Demo'
printf '\n\033[1m$ # the mug gets cheaper: only its offer goes out in the next run\033[0m\n'
echo '{"prices": [{"product": "KUBEK", "price_type": "DETAL", "net_price": "21.14"}]}' \
  | soa erp load 'Firma Demo' -
soa tasks run-now "$SYNC" >/dev/null && wait_for_run "$SYNC"
step soa runs list --task "$SYNC" --limit 2
step soa sync status 'Firma Demo' --json

step soa --station BIURO stop
step soa --station BIURO status
step soa logs --limit 20
# Audit: rebuild every read model from the event store into fresh tables and compare
# them with the live ones row by row (exit 1 on any difference).
step soa replay --check
