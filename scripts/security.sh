#!/usr/bin/env bash
# Security checks, as CI runs them (.ci/run) and a developer can run them locally:
#   1. pip-audit: known vulnerabilities in the installed environment (.venv). Fails on any finding.
#      The audit asks PyPI's advisory service over the network. When it cannot be reached (a closed
#      network, a local package mirror that PyPI's JSON API does not know), pip-audit itself reports
#      "No known vulnerabilities found" with every package skipped — green while nothing was checked.
#      This script counts what was really audited and, when that is nothing, prints a WARNING saying the
#      audit was NOT done and goes on (the tests still run); JUKIMON_AUDIT_STRICT=1 makes it fail instead.
#   2. bandit: static security lint, high severity must be 0 (each justified exception is a
#      `# nosec BXXX` with its reason beside it); the medium count is printed for the record.
set -euo pipefail
source "$(dirname "$0")/_env.sh"
cd "$ROOT"
[ -x "$VENV/bin/pip-audit" ] && [ -x "$VENV/bin/bandit" ] || "$VENV/bin/python" -m pip install -q -e "$ROOT[test]"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== pip-audit (installed environment; the project itself skipped)"
audit_rc=0
"$VENV/bin/pip-audit" --skip-editable --progress-spinner off -f json -o "$tmp/audit.json" 2>"$tmp/audit.err" \
  || audit_rc=$?
"$VENV/bin/python" - "$tmp/audit.json" "$tmp/audit.err" "$audit_rc" "${JUKIMON_AUDIT_STRICT:-0}" <<'PY'
import json, sys
from pathlib import Path

report, errors, rc, strict = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
try:
    deps = json.loads(report.read_text())["dependencies"]
except (OSError, ValueError, KeyError):
    deps = None
if deps is None:  # pip-audit stopped before writing its report: the service is unreachable
    reason = (errors.read_text(errors="replace").strip().splitlines() or [f"exit {rc}"])[-1]
    print(f"WARNING: dependency audit NOT done: {reason[:300]}")
    sys.exit(1 if strict else 0)
audited = [d for d in deps if "skip_reason" not in d]
vulnerable = [d for d in audited if d.get("vulns")]
for dep in vulnerable:
    for vuln in dep["vulns"]:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
        print(f"VULNERABLE: {dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixes})")
print(f"pip-audit: {len(deps)} packages, {len(audited)} audited, {len(deps) - len(audited)} not found by the "
      f"advisory service, {sum(len(d['vulns']) for d in vulnerable)} known vulnerabilities")
if vulnerable:
    sys.exit(1)
if deps and not audited:
    print("WARNING: dependency audit NOT done: PyPI's advisory service knows none of the installed packages "
          "(unreachable, or a private mirror); run scripts/security.sh where pypi.org is reachable")
    sys.exit(1 if strict else 0)
PY

echo "== bandit (high severity must be 0)"
paths=(monitor collectors ids alerting dashboards drills simnet)
"$VENV/bin/bandit" -q -r "${paths[@]}" -lll
"$VENV/bin/bandit" -q -r "${paths[@]}" -f json -o "$tmp/bandit.json" >/dev/null 2>&1 || true
"$VENV/bin/python" - "$tmp/bandit.json" <<'PY'
import collections, json, sys

results = json.load(open(sys.argv[1]))["results"]
by_severity = collections.Counter(r["issue_severity"] for r in results)
medium = collections.Counter(r["test_id"] for r in results if r["issue_severity"] == "MEDIUM")
print(f"bandit: high {by_severity['HIGH']}, medium {by_severity['MEDIUM']} "
      f"({', '.join(f'{k} {v}' for k, v in sorted(medium.items())) or 'none'}), low {by_severity['LOW']}")
PY
