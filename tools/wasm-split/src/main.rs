//! Two steps of `scripts/build.sh` (docs/build.md "Split wasm"):
//!
//! - `split INPUT.wasm PKG_DIR MAIN_OUT.wasm NAME`: cuts the wasm at its `#[lazy]` split
//!   points (one per page of the dashboard) with `wasm_split_cli_support`, the library
//!   cargo-leptos uses. The main module goes to `MAIN_OUT.wasm` (wasm-bindgen's input); the
//!   chunks, the loader `__wasm_split.______________________.js` and the manifest Leptos
//!   reads to preload a page's chunks go into `PKG_DIR`.
//! - `name PKG_DIR NAME HASH_FILE`: names the release build's files after their content so
//!   browsers may cache them for good. Every file of one build gets the same 22-hex-digit
//!   name part, a hash of all of them together: the files name each other (the loader names
//!   the chunks and the main module, the main module and the chunks name the loader), so a
//!   change to any must rename all, or a browser still holding an old page would fetch new
//!   chunks into an old module. The stylesheet keeps a hash of its own. Writes `HASH_FILE`
//!   in the format Leptos reads (`js:`, `wasm:`, `css:`, `manifest:`, `split:`). The plain
//!   names stay too: a debug binary (no `HASH_FILE` beside it) serves those.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sha2::{Digest, Sha256};

/// The loader's name before naming: Leptos' placeholder, 22 characters where the hash goes.
const PLACEHOLDER: &str = "______________________";
const LOADER: &str = "__wasm_split.______________________.js";
const MANIFEST: &str = "__wasm_split_manifest.json";

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["split", input, pkg, main_out, name] => {
            split(Path::new(input), Path::new(pkg), Path::new(main_out), name)
        }
        ["name", pkg, name, hash_file] => {
            name_by_content(Path::new(pkg), name, Path::new(hash_file))
        }
        _ => Err(
            "usage: paydesk-wasm-split split INPUT.wasm PKG_DIR MAIN_OUT.wasm NAME\n       \
                  paydesk-wasm-split name PKG_DIR NAME HASH_FILE"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paydesk-wasm-split: {e}");
            ExitCode::FAILURE
        }
    }
}

fn split(input: &Path, pkg: &Path, main_out: &Path, name: &str) -> Result<(), Error> {
    let wasm = fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let main_module = format!("./{name}.js");
    let link_name = format!("./{LOADER}");
    let split = wasm_split_cli_support::transform({
        let mut opts = wasm_split_cli_support::Options::new(&wasm);
        opts.output_dir = pkg;
        opts.main_out_path = main_out;
        opts.main_module = &main_module;
        opts.link_name = &link_name;
        opts.target.web();
        opts
    })
    .map_err(|e| format!("splitting {}: {e:#}", input.display()))?;
    // Sorted, so the same input gives the same bytes (and the same content hash).
    let manifest: std::collections::BTreeMap<_, _> = split.prefetch_map.into_iter().collect();
    fs::write(pkg.join(MANIFEST), serde_json::to_vec_pretty(&manifest)?)?;
    Ok(())
}

fn name_by_content(pkg: &Path, name: &str, hash_file: &Path) -> Result<(), Error> {
    let manifest_path = pkg.join(MANIFEST);
    let manifest_bytes = fs::read(&manifest_path)?;
    let manifest: HashMap<String, Vec<String>> = serde_json::from_slice(&manifest_bytes)?;
    let mut chunks: Vec<String> = manifest.values().flatten().cloned().collect();
    chunks.sort();
    chunks.dedup();

    // The files of the build, in a fixed order.
    let main_js = pkg.join(format!("{name}.js"));
    let main_wasm = pkg.join(format!("{name}.wasm"));
    let loader = pkg.join(LOADER);
    let chunk_paths: Vec<PathBuf> = chunks
        .iter()
        .map(|c| pkg.join(format!("{c}.wasm")))
        .collect();
    // Each file is read once: hashed together in this fixed order, then rewritten.
    let read = |path: &Path| fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let main_js_text = String::from_utf8(read(&main_js)?)?;
    let loader_text = String::from_utf8(read(&loader)?)?;
    let mut modules: Vec<(&Path, Vec<u8>)> = vec![(&main_wasm, read(&main_wasm)?)];
    for path in &chunk_paths {
        modules.push((path, read(path)?));
    }
    let mut hasher = Sha256::new();
    let build = [
        main_js_text.as_bytes(),
        loader_text.as_bytes(),
        &manifest_bytes,
    ]
    .into_iter()
    .chain(modules.iter().map(|(_, bytes)| bytes.as_slice()));
    for bytes in build {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    let hash = hex(&hasher.finalize())[..PLACEHOLDER.len()].to_string();
    let hashed_loader = LOADER.replace(PLACEHOLDER, &hash);

    // The main module and the chunks import the loader by name: same length, in place.
    // Each one that links to the loader names it; the main module always does.
    for (path, mut bytes) in modules {
        let n = replace_bytes(&mut bytes, LOADER.as_bytes(), hashed_loader.as_bytes());
        if n == 0 && path == main_wasm {
            return Err(format!("{} does not import {LOADER}", path.display()).into());
        }
        write_named(path, &hash, &bytes)?;
    }
    // wasm-bindgen's glue imports the loader (once per function it takes from it).
    if !main_js_text.contains(LOADER) {
        return Err(format!("{} does not import {LOADER}", main_js.display()).into());
    }
    let js = main_js_text.replace(LOADER, &hashed_loader);
    write_named(&main_js, &hash, js.as_bytes())?;
    // The loader imports the main module and fetches each chunk once.
    let mut loader_js = replace_exactly(
        &loader_text,
        &format!("\"./{name}.js\""),
        &format!("\"./{name}.{hash}.js\""),
        "loader",
    )?;
    for chunk in &chunks {
        loader_js = replace_exactly(
            &loader_js,
            &format!("\"./{chunk}.wasm\""),
            &format!("\"./{chunk}.{hash}.wasm\""),
            "loader",
        )?;
    }
    write_new(&pkg.join(&hashed_loader), loader_js.as_bytes())?;
    // Leptos preloads a page's chunks by the names in the manifest.
    let renamed: std::collections::BTreeMap<&String, Vec<String>> = manifest
        .iter()
        .map(|(split, files)| (split, files.iter().map(|f| format!("{f}.{hash}")).collect()))
        .collect();
    write_new(
        &pkg.join(format!("__wasm_split_manifest.{hash}.json")),
        &serde_json::to_vec_pretty(&renamed)?,
    )?;

    let css = read(&pkg.join(format!("{name}.css")))?;
    let css_hash = hex(&Sha256::digest(&css))[..20].to_string();
    write_new(&pkg.join(format!("{name}.{css_hash}.css")), &css)?;

    write_new(
        hash_file,
        format!("js: {hash}\nwasm: {hash}\ncss: {css_hash}\nmanifest: {hash}\nsplit: {hash}\n")
            .as_bytes(),
    )?;
    Ok(())
}

/// Writes `bytes` as `stem.HASH.ext` beside `path`.
fn write_named(path: &Path, hash: &str, bytes: &[u8]) -> Result<(), Error> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("no file name")?;
    let ext = path
        .extension()
        .and_then(|s| s.to_str())
        .ok_or("no extension")?;
    write_new(&path.with_file_name(format!("{stem}.{hash}.{ext}")), bytes)
}

/// Writes a new file and renames it into place: never into an existing file's inode (a
/// `target/` copied with hard links shares them with other checkouts).
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = PathBuf::from(format!("{}.tmp-new", path.display()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// `text` with `from` replaced by `to`, which must occur exactly once: a change in how the
/// splitter or wasm-bindgen writes these names must stop the build, not ship a loader
/// that fetches the wrong files.
fn replace_exactly(text: &str, from: &str, to: &str, what: &str) -> Result<String, Error> {
    match text.matches(from).count() {
        1 => Ok(text.replacen(from, to, 1)),
        n => Err(format!("{what}: expected `{from}` once, found it {n} times").into()),
    }
}

/// Replaces every `from` in `haystack` with `to` (same length), returning how many.
fn replace_bytes(haystack: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    assert_eq!(
        from.len(),
        to.len(),
        "an in-place replacement keeps the length"
    );
    let (mut i, mut n) = (0, 0);
    while i + from.len() <= haystack.len() {
        if &haystack[i..i + from.len()] == from {
            haystack[i..i + from.len()].copy_from_slice(to);
            i += from.len();
            n += 1;
        } else {
            i += 1;
        }
    }
    n
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
