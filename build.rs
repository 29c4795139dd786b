//! Puts the WGSL harness (`shaders/harness/*.wgsl`) into `OUT_DIR` without its comments, which
//! is what `src/codegen` compiles in: the comments document the files in `shaders/`, and
//! carrying them in every package would cost about 2 KB gzipped of wasm.

use std::path::Path;
use std::{env, fs};

fn main() {
    let harness = Path::new("shaders/harness");
    println!("cargo:rerun-if-changed={}", harness.display());
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("harness");
    fs::create_dir_all(&out).expect("OUT_DIR is writable");
    for entry in fs::read_dir(harness).expect("shaders/harness exists") {
        let path = entry.expect("shaders/harness is readable").path();
        if path.extension().is_none_or(|extension| extension != "wgsl") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let text = fs::read_to_string(&path).expect("harness files are UTF-8");
        // WGSL has no string literals, so `//` always starts a comment.
        let code: String = text
            .lines()
            .map(|line| line.split("//").next().unwrap_or_default().trim_end())
            .filter(|line| !line.is_empty())
            .flat_map(|line| [line, "\n"])
            .collect();
        fs::write(out.join(path.file_name().expect("a file")), code).expect("OUT_DIR is writable");
    }
}
