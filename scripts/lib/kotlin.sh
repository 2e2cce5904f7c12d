# Sourced by scripts/test-bindings and scripts/bench-ffi: kotlinc (npm
# package kotlin-compiler) and JNA (Debian's libjna-java), installed when
# missing. Sets KOTLINC, KLIB (the compiler's jars) and JNA.
KOTLIN_VERSION=2.4.20
TOOLS="${SAMBUNG_TOOLS:-$HOME/.cache/sambung-tools}"
KOTLINC="$TOOLS/kotlin-$KOTLIN_VERSION/package/bin/kotlinc"
KLIB="$TOOLS/kotlin-$KOTLIN_VERSION/package/lib"
JNA=/usr/share/java/jna.jar

need_kotlin() {
    if [ ! -f "$JNA" ] && command -v apt-get >/dev/null; then
        apt-get install -y -q libjna-java >/dev/null 2>&1 \
            || (apt-get update -q >/dev/null && apt-get install -y -q libjna-java >/dev/null)
    fi
    if [ ! -x "$KOTLINC" ]; then
        mkdir -p "$TOOLS/kotlin-$KOTLIN_VERSION"
        (cd "$TOOLS/kotlin-$KOTLIN_VERSION" && npm pack "kotlin-compiler@$KOTLIN_VERSION" --silent >/dev/null \
            && tar xzf kotlin-compiler-*.tgz && rm kotlin-compiler-*.tgz && chmod +x package/bin/*)
    fi
}
