#!/usr/bin/env bash
# Wall time and peak memory of `pgopt analyze` at 1,000, 10,000 and 100,000 tables beside the
# psql floor in the same run, and the start time
# of an embedded cluster; prints the figures and their ratios (goals of issue #15).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench analyze
