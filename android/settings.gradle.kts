// The Sambung Android library: the Rust core (sambung-ffi) for arm64-v8a,
// armeabi-v7a and x86_64, its generated Kotlin bindings, and a thin
// Android layer (Keystore keys, connectivity, WorkManager, logcat).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "sambung-android"
include(":sambung")
