#!/usr/bin/env bash
# Every library scenario's verdict lines (twin compare, -r 10 by default), into
# docs/verdicts.md: the numbers the README's scenario table quotes.
#   bash scripts/scenario_verdicts.sh [REPLICATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
r="${1:-10}"
out=docs/verdicts.md
{
  echo "# Scenario verdicts"
  echo
  echo "Made by \`bash scripts/scenario_verdicts.sh $r\` (each scenario:"
  echo "\`twin compare scenarios/<name>.yaml -r $r --metrics guest_downtime_min_per_year\`, its verdict lines)"
  echo "on commit $(git rev-parse --short HEAD). The 95 % CI of each paired difference is in brackets."
  echo
  for s in scenarios/*.yaml; do
    name=$(basename "$s" .yaml)
    echo "## $name"
    echo
    echo '```text'
    .venv/bin/twin compare "$s" -r "$r" --quiet --metrics guest_downtime_min_per_year 2>/dev/null \
      | grep -E " - .*: " || echo "(no verdict lines)"
    echo '```'
    echo
  done
} > "$out"
echo "wrote $out"
