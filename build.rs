//! Puts the WGSL harness (`shaders/harness/*.wgsl`) and the built-in kernels
//! (`shaders/kernels/*.wgsl`) into `OUT_DIR` without their comments, which is what `src/codegen`
//! and `src/kernel/builtins.rs` compile in: the comments document the files in `shaders/`, and
//! carrying them in every package would cost about 2 KB gzipped of wasm for the harness and
//! 0.5 KB for the kernels.

use std::path::Path;
use std::{env, fs};

fn main() {
    for folder in ["harness", "kernels"] {
        strip_comments(folder);
    }
}

/// `shaders/<folder>/*.wgsl` into `OUT_DIR/<folder>/`, without comments or blank lines.
fn strip_comments(folder: &str) {
    let shaders = Path::new("shaders").join(folder);
    println!("cargo:rerun-if-changed={}", shaders.display());
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join(folder);
    fs::create_dir_all(&out).expect("OUT_DIR is writable");
    for entry in fs::read_dir(&shaders).expect("the shaders folder exists") {
        let path = entry.expect("the shaders folder is readable").path();
        if path.extension().is_none_or(|extension| extension != "wgsl") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let text = fs::read_to_string(&path).expect("shaders are UTF-8");
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
