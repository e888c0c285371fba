#!/usr/bin/env bash
# Wall time and peak memory of `pgopt analyze` at 1,000 and 10,000 tables, and the start time
# of an embedded cluster; prints the figures and their ratios to the goals of issue 2.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench analyze
