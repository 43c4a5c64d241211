#!/usr/bin/env bash
# Regenerates the TypeScript types of the wire contract (src/wire/generated) from proto/.
# The generator writes extensionless relative imports; NodeNext ESM needs ".js", so they are added.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf src/wire/generated
# Every .proto of the package, so a new service file needs no edit here.
mapfile -t protos < <(cd proto && ls kvbridge/v1/*.proto)
npx --no-install proto-loader-gen-types "${protos[@]}" \
  --longs=Number --enums=String --defaults=true --oneofs=true --grpcLib=@grpc/grpc-js \
  --outDir=src/wire/generated --includeDirs=proto 2>/dev/null
find src/wire/generated -name '*.ts' -exec sed -i -E "s#(from '\.[^']*)';#\1.js';#" {} +
