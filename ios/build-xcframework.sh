#!/usr/bin/env bash
# Builds build/SambungFFI.xcframework: the static library for iOS devices
# (aarch64-apple-ios) and the simulator (aarch64-apple-ios-sim and
# x86_64-apple-ios, joined with lipo), with the generated C headers and one
# module map for both FFI modules. Needs macOS with Xcode and the targets:
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios
set -euo pipefail
cd "$(dirname "$0")"
repo="$(cd .. && pwd)"
out="build"
rm -rf "$out" && mkdir -p "$out/headers" "$out/sim"

(cd "$repo" && scripts/generate-swift)   # the Swift sources and headers, fresh
for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
    (cd "$repo" && cargo build --release --locked -p sambung-ffi --target "$t")
done
lipo -create \
    "$repo/target/aarch64-apple-ios-sim/release/libsambung_ffi.a" \
    "$repo/target/x86_64-apple-ios/release/libsambung_ffi.a" \
    -output "$out/sim/libsambung_ffi.a"

cp Sources/SambungFFI/*.h "$out/headers/"
# One module map naming both FFI modules (uniffi writes one per crate).
cat Sources/SambungFFI/*.modulemap > "$out/headers/module.modulemap"

xcodebuild -create-xcframework \
    -library "$repo/target/aarch64-apple-ios/release/libsambung_ffi.a" -headers "$out/headers" \
    -library "$out/sim/libsambung_ffi.a" -headers "$out/headers" \
    -output "$out/SambungFFI.xcframework"
echo "built $out/SambungFFI.xcframework"
