#!/usr/bin/env bash
# `swift test` with a watchdog, as scripts/test.sh runs it:
#
#   scripts/test/swift-test-watchdog.sh [swift test arguments...]
#
# A test that never returns (an await nobody resumes, a child process nobody reaps) would otherwise hold the run
# until CI's 90 minutes are up and say nothing about which test it was. Past SWIFT_TEST_TIMEOUT seconds (default
# 2100: a whole suite takes 5 to 10 minutes on two cores) the run is stopped, the tests that started and never
# finished are named, and the script fails. The whole output is also kept in var/swift-test.log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

limit="${SWIFT_TEST_TIMEOUT:-2100}"
output="$(var_path swift-test.log)"

set +e
timeout --kill-after=30s "$limit" swift test "$@" 2>&1 | tee "$output"
status=${PIPESTATUS[0]}
set -e

# 124: timeout stopped it; 137: it had to be killed.
if ((status == 124 || status == 137)); then
    # The test runner is a child of `swift test`: make sure it does not linger holding ports and queues.
    pkill -KILL -f 'PackageTests\.xctest' 2>/dev/null || true
    warn "swift test did not finish within ${limit}s (SWIFT_TEST_TIMEOUT); tests that started and never finished:"
    # Swift Testing prints "◇ Test name() started." and, when it ends, "✔ Test name() passed" or "✘ Test name()
    # failed" (or "➜ ... skipped"). A name may belong to tests in several suites, so count per name.
    python3 - "$output" <<'PY'
import re, sys
started, ended = {}, {}
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    match = re.match(r"^. Test (\S+\(\S*\))(?: with \d+ test cases?)? (started|passed|failed|skipped)", line)
    if not match:
        continue
    name, what = match.groups()
    counts = started if what == "started" else ended
    counts[name] = counts.get(name, 0) + 1
hung = sorted(name for name, count in started.items() if count > ended.get(name, 0))
for name in hung:
    print(f"    {name}")
if not hung:
    print("    (none: the run hung outside a test, e.g. in a suite's setup or at exit)")
PY
    die "swift test timed out; its whole output is in $output"
fi
exit "$status"
