// The library module. `./gradlew :sambung:assembleRelease` builds the Rust
// library for every ABI with cargo-ndk, generates the Kotlin bindings from
// it with the workspace's uniffi-bindgen, and packages both with the
// Android layer in src/main/kotlin into an AAR.
import org.gradle.api.tasks.Exec

plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

val repoRoot = rootProject.projectDir.parentFile
val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")
val jniOut = layout.buildDirectory.dir("rustJniLibs")
val bindingsOut = layout.buildDirectory.dir("generated/source/uniffi")

android {
    namespace = "id.sambung.android"
    compileSdk = 35
    defaultConfig {
        // Android 7.0: the oldest Android Keystore with the AES/GCM keys the
        // key provider uses, and what field phones in the regions still run.
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
        ndk { abiFilters += abis }
    }
    sourceSets["main"].jniLibs.srcDir(jniOut)
    sourceSets["main"].kotlin.srcDir(bindingsOut)
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

// The Rust library for every ABI (needs the NDK and `cargo install cargo-ndk`).
val cargoNdk by tasks.registering(Exec::class) {
    workingDir = repoRoot
    val args = mutableListOf("cargo", "ndk", "--platform", "24", "-o", jniOut.get().asFile.path)
    abis.forEach { args += listOf("-t", it) }
    args += listOf("build", "--release", "--locked", "-p", "sambung-ffi")
    commandLine(args)
}

// The Kotlin bindings, generated from a host build of the same library (the
// metadata is the same for every target; a stripped library has none).
val uniffiBindings by tasks.registering(Exec::class) {
    workingDir = repoRoot
    commandLine(
        "bash", "-c",
        "cargo build --locked -p sambung-ffi -p uniffi-bindgen && " +
            "target/debug/uniffi-bindgen generate --library target/debug/libsambung_ffi.so " +
            "--language kotlin --no-format --out-dir '${bindingsOut.get().asFile.path}'",
    )
}

tasks.named("preBuild") { dependsOn(cargoNdk, uniffiBindings) }

dependencies {
    // JNA as an AAR: it carries its own native dispatch library per ABI.
    implementation("net.java.dev.jna:jna:5.15.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
    implementation("androidx.work:work-runtime-ktx:2.10.0")
}
