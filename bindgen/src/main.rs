//! `uniffi-bindgen generate --library target/…/libsambung_ffi.so --language
//! kotlin|swift|python --out-dir …`: the same uniffi version as the library.

fn main() {
    uniffi::uniffi_bindgen_main()
}
