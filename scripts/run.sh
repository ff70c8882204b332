#!/usr/bin/env bash
# The main job: the simulated national network and the monitor, on localhost, embedded defaults.
# Extra arguments go to `jukimon run` (see `jukimon run --help`).
source "$(dirname "$0")/_env.sh" ?mosquitto ?victoria-metrics
cd "$ROOT"
exec "$VENV/bin/jukimon" run "$@"
