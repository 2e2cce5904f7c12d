// swift-tools-version:5.9
// The Sambung core for iOS: the Rust library as an XCFramework (built by
// build-xcframework.sh), its generated Swift bindings, and a thin iOS layer
// (Keychain keys, NWPathMonitor, BGTaskScheduler, os_log).
import PackageDescription

let package = Package(
    name: "Sambung",
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "Sambung", targets: ["Sambung"]),
    ],
    targets: [
        // libsambung_ffi.a for device and simulator, with the C headers and
        // module maps of Sources/SambungFFI.
        .binaryTarget(name: "SambungFFI", path: "build/SambungFFI.xcframework"),
        .target(
            name: "Sambung",
            dependencies: ["SambungFFI"],
            path: "Sources/Sambung"
        ),
    ]
)
