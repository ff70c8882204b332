#!/usr/bin/env bash
# The whole test suite. Extra arguments go to pytest.
source "$(dirname "$0")/_env.sh" snmp snmptrapd mosquitto victoria-metrics postgresql chromium fonts-noto-cjk
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
