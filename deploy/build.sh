#!/usr/bin/env bash
# Build the Lambda code package: copy sim/__init__.py and sim/drain/*.py into OUTPUT_DIR/sim/.
#
# Usage: deploy/build.sh [OUTPUT_DIR]
# OUTPUT_DIR defaults to deploy/build, the CodeUri of deploy/template.yaml. The script works
# from any current folder. It replaces OUTPUT_DIR/sim and leaves other files in OUTPUT_DIR alone.
# The rest of sim/ is left out because it needs numpy, pandas and SimPy, which the Lambda
# runtime does not include. sim/drain/ needs only the standard library and boto3.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
output_dir="${1:-$repo_root/deploy/build}"

if [[ ! -f "$repo_root/sim/drain/handlers.py" ]]; then
    echo "build.sh: $repo_root/sim/drain/handlers.py not found; it defines the handlers that deploy/template.yaml names" >&2
    exit 1
fi

rm -rf "$output_dir/sim"
mkdir -p "$output_dir/sim/drain"
cp "$repo_root/sim/__init__.py" "$output_dir/sim/"
cp "$repo_root"/sim/drain/*.py "$output_dir/sim/drain/"

echo "build.sh: wrote the Lambda package to $output_dir"
