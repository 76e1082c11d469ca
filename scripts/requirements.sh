#!/usr/bin/env bash
# Print the pinned pip requirements from the `pip:` section of environment.yml (one per line).
# environment.yml is the single source of versions; the venv set-up reads it through this script.
set -euo pipefail
sed -n '/^ *- pip:/,$p' "${1:-environment.yml}" | sed -n 's/^ *- \([^ #][^ #]*\).*/\1/p' | tail -n +2
