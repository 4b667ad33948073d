//! The layout's rules, checked on the source tree: no source file over 600 lines (its unit-test
//! module aside) and no import cycle between the library's modules. Run it alone to see the
//! largest files and the module graph's size:
//! `cargo test --release --test layout -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lines a source file may have before its unit tests.
const MOST_LINES: usize = 600;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's text without its trailing `#[cfg(test)] mod tests { … }` (or `mod tests;`).
fn code_part(text: &str) -> &str {
    match text.rfind("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// Module path of a file under `src/` (`src/audio/wav.rs` → `audio::wav`, `mod.rs` → its
/// folder, `lib.rs` → the crate root ``).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// Every path a `use` tree names, expanded: `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        let base = join(prefix, head);
        let (mut depth, mut start) = (0, 0);
        for (i, ch) in inner.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&base, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&base, &inner[start..], out);
    } else if !tree.is_empty() {
        let name = tree.split(" as ").next().unwrap().trim();
        out.push(join(prefix, name));
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}::{b}"),
    }
}

/// The `crate::…` paths a module's code names (in `use` items and inline), `super::` and
/// `self::` resolved against `module`.
fn referenced_paths(module: &str, code: &str) -> Vec<String> {
    let mut out = Vec::new();
    // `use` items (possibly over several lines), `pub use` re-exports among them.
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = &rest[..i];
        let at_line_start = before
            .rsplit('\n')
            .next()
            .is_some_and(|l| l.trim().is_empty() || l.trim() == "pub" || l.trim() == "pub(crate)");
        let tail = &rest[i + 4..];
        let Some(end) = tail.find(';') else { break };
        if at_line_start {
            expand("", &tail[..end], &mut out);
        }
        rest = &tail[end..];
    }
    // Inline paths: `crate::a::b::name`.
    for (i, _) in code.match_indices("crate::") {
        let path: String = code[i..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        out.push(path.trim_end_matches(':').to_string());
    }
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    out.into_iter()
        .filter_map(|p| {
            if let Some(r) = p.strip_prefix("crate::") {
                Some(r.to_string())
            } else if let Some(r) = p.strip_prefix("super::") {
                Some(join(parent, r))
            } else {
                p.strip_prefix("self::").map(|r| join(module, r))
            }
        })
        .collect()
}

#[test]
fn no_file_is_too_long_and_no_modules_import_each_other_in_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut lib_modules: BTreeMap<String, String> = BTreeMap::new();
    let mut sizes = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let code = code_part(&text);
        sizes.push((
            code.lines().count(),
            f.strip_prefix(root).unwrap().to_path_buf(),
        ));
        // The binary's modules (src/main.rs, src/cli/) use the library by name, not `crate::`.
        let rel = f.strip_prefix(&src).unwrap();
        if !rel.starts_with("cli") && rel != Path::new("main.rs") {
            lib_modules.insert(module_of(&src, f), code.to_string());
        }
    }
    sizes.sort_by(|a, b| b.cmp(a));
    println!("largest source files (lines before their unit tests):");
    for (n, f) in sizes.iter().take(10) {
        println!("  {n:5}  {}", f.display());
    }
    let long: Vec<_> = sizes.iter().filter(|(n, _)| *n > MOST_LINES).collect();
    assert!(long.is_empty(), "files over {MOST_LINES} lines: {long:?}");

    // Edges: module → the deepest module a path it names falls in (the crate root, whose
    // re-exports are the public surface, is left out: no module may import through it but
    // for `crate::Error` and `crate::Result`, which are `error`'s).
    let names: BTreeSet<&str> = lib_modules.keys().map(String::as_str).collect();
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (module, code) in &lib_modules {
        for path in referenced_paths(module, code) {
            let parts: Vec<&str> = path.split("::").collect();
            let target = (1..=parts.len())
                .rev()
                .map(|n| parts[..n].join("::"))
                .find(|m| names.contains(m.as_str()));
            let target = match target {
                Some(t) => t,
                None if matches!(parts[0], "Error" | "Result") => "error".to_string(),
                None => continue,
            };
            let t = *names.get(target.as_str()).unwrap();
            if t != module && !t.is_empty() && !module.is_empty() {
                edges.entry(module.as_str()).or_default().insert(t);
            }
        }
    }
    let count: usize = edges.values().map(BTreeSet::len).sum();
    println!(
        "{} library modules, {count} imports between them",
        names.len()
    );
    assert!(count > 50, "the module graph looks unread: {edges:?}");

    // Cycles: a module that can reach itself.
    let mut cycles = Vec::new();
    for &start in &names {
        let mut stack = vec![(start, vec![start])];
        let mut seen = BTreeSet::new();
        while let Some((m, path)) = stack.pop() {
            for &next in edges.get(m).into_iter().flatten() {
                if next == start {
                    cycles.push(path.join(" → ") + " → " + start);
                    stack.clear();
                    break;
                }
                if seen.insert(next) {
                    let mut p = path.clone();
                    p.push(next);
                    stack.push((next, p));
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_checker_sees_cycles_and_nested_use_trees() {
    let mut v = Vec::new();
    expand("", "crate::a::{b, c::{d, e as f}, g::h}", &mut v);
    assert_eq!(
        v,
        [
            "crate::a::b",
            "crate::a::c::d",
            "crate::a::c::e",
            "crate::a::g::h"
        ]
    );
    let paths = referenced_paths(
        "x::y",
        "use super::z::Q;\nuse crate::{Error, m::n};\nfn f() { crate::p::q(); }",
    );
    assert_eq!(paths, ["x::z::Q", "Error", "m::n", "p::q"]);
    assert_eq!(code_part("a\nb\n#[cfg(test)]\nmod tests {\n}\n"), "a\nb\n");
}
