#!/usr/bin/env bash
# The path issue #13 names: the walkthrough lives with the other demos in scripts/dev/demo/.
exec "$(dirname "${BASH_SOURCE[0]}")/../dev/demo/app-review.sh" "$@"
