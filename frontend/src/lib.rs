//! The thin wasm crate (docs/build.md "Layout that worked"): it only calls `app::hydrate`, so
//! `app`'s `hydrate` feature is never unified with the server's `ssr` feature.

/// Called by the generated JavaScript once the wasm module is loaded.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    app::hydrate();
}
