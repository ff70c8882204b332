#!/usr/bin/env bash
# The whole benchmark suite (bench/run_all.py), ~10 minutes; results in bench/results/suite-*/.
# Extra arguments go to run_all.py (e.g. --only state,console).
source "$(dirname "$0")/_env.sh" snmp mosquitto mosquitto-clients victoria-metrics prometheus-snmp-exporter
cd "$ROOT"
exec "$VENV/bin/python" bench/run_all.py "$@"
