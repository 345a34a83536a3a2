//! The shape of the source tree, as the README's architecture section
//! describes it: no two files of `src/` import each other (directly or
//! round a circle), the listener (`net/`) knows nothing of the API above
//! it, the transports (`api/`) and the built-in handlers (`handlers/`)
//! reach tasks through the engine and never name the store, and the engine
//! knows no transport.
//!
//! Imports are read from the source text: every `use crate::...` and every
//! inline `crate::...` path, resolved to the file that defines the item
//! (following a `mod.rs`'s `pub use` to where it points).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, by its path relative to `src/`.
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("src/ reads") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path
                    .strip_prefix(root)
                    .expect("under src/")
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(relative, std::fs::read_to_string(&path).expect("a readable source"));
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// The module path of a file (`engine/core.rs` is `engine::core`).
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its unit tests.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d, e}}` as `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or(&tree).to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.len().saturating_sub(1)];
    let mut parts = Vec::new();
    let (mut depth, mut current) = (0, String::new());
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
        .into_iter()
        .filter(|part| !part.is_empty())
        .flat_map(|part| expand(&part).into_iter().map(move |path| format!("{prefix}{path}")))
        .collect()
}

/// Every path a file names: its `use` trees, and inline `crate::` paths.
fn paths_named(code: &str, public_only: bool) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    let keyword = if public_only { "pub use " } else { "use " };
    while let Some(at) = rest.find(keyword) {
        let before = rest[..at].chars().last();
        let after = &rest[at + keyword.len()..];
        let end = after.find(';').unwrap_or(after.len());
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            paths.extend(expand(&after[..end]));
        }
        rest = &after[end..];
    }
    if !public_only {
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            let after = &rest[at..];
            let end = after
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(after.len());
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '$') {
                paths.push(after[..end].trim_end_matches(':').to_string());
            }
            rest = &after[end..];
        }
    }
    paths
}

struct Tree {
    files: BTreeMap<String, String>,
    by_module: BTreeMap<Vec<String>, String>,
}

impl Tree {
    fn new() -> Self {
        let files: BTreeMap<String, String> = sources().into_iter().map(|(file, text)| (file, code(&text))).collect();
        let by_module = files.keys().map(|file| (module_of(file), file.clone())).collect();
        Tree { files, by_module }
    }

    /// The file that defines what `path` (named in `from`) names.
    fn resolve(&self, from: &str, path: &str) -> Option<String> {
        let segments: Vec<String> = path.split("::").map(str::to_string).collect();
        let here = module_of(from);
        let mut segments: Vec<String> = match segments.first().map(String::as_str) {
            Some("crate") => segments[1..].to_vec(),
            Some("super") => here[..here.len().saturating_sub(1)]
                .iter()
                .chain(&segments[1..])
                .cloned()
                .collect(),
            Some("self") => here.iter().chain(&segments[1..]).cloned().collect(),
            _ => return None,
        };
        segments.retain(|segment| segment != "self" && segment != "*");
        for _ in 0..6 {
            let (file, rest) = (0..=segments.len()).rev().find_map(|length| {
                self.by_module
                    .get(&segments[..length])
                    .map(|file| (file.clone(), segments[length..].to_vec()))
            })?;
            let Some(name) = rest.first() else {
                return Some(file);
            };
            // Follow a re-export to the file that defines the item.
            let target = paths_named(&self.files[&file], true)
                .into_iter()
                .find(|path| path.rsplit("::").next() == Some(name.as_str()));
            let Some(target) = target else {
                return Some(file);
            };
            let module = module_of(&file);
            let target: Vec<String> = target.split("::").map(str::to_string).collect();
            segments = match target[0].as_str() {
                "crate" => target[1..].to_vec(),
                "self" => module.iter().chain(&target[1..]).cloned().collect(),
                "super" => module[..module.len().saturating_sub(1)]
                    .iter()
                    .chain(&target[1..])
                    .cloned()
                    .collect(),
                _ => module.iter().chain(&target).cloned().collect(),
            };
            segments.extend(rest[1..].iter().cloned());
        }
        None
    }

    /// Which files each file imports.
    fn imports(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.files
            .iter()
            .map(|(file, code)| {
                let imported = paths_named(code, false)
                    .iter()
                    .filter_map(|path| self.resolve(file, path))
                    .filter(|target| target != file)
                    .collect();
                (file.clone(), imported)
            })
            .collect()
    }
}

/// The circles of `graph`: its strongly connected parts of two or more.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Kosaraju: finish order on the graph, then parts on the reversed one.
    fn finish(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) {
        if !seen.insert(node.to_string()) {
            return;
        }
        for next in graph.get(node).into_iter().flatten() {
            finish(next, graph, seen, order);
        }
        order.push(node.to_string());
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for node in graph.keys() {
        finish(node, graph, &mut seen, &mut order);
    }
    let mut reversed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in graph {
        for to in targets {
            reversed.entry(to.clone()).or_default().insert(from.clone());
        }
    }
    let mut assigned = BTreeSet::new();
    let mut found = Vec::new();
    for node in order.into_iter().rev() {
        let mut part = Vec::new();
        finish(&node, &reversed, &mut assigned, &mut part);
        if part.len() > 1 {
            part.sort();
            found.push(part);
        }
    }
    found
}

#[test]
fn no_two_files_of_src_import_each_other_even_round_a_circle() {
    let tree = Tree::new();
    let imports = tree.imports();
    assert!(
        imports
            .get("store/transition/submit.rs")
            .is_some_and(|targets| targets.contains("store/driver.rs")),
        "the reader sees imports: {:?}",
        imports.get("store/transition/submit.rs")
    );
    assert_eq!(circles(&imports), Vec::<Vec<String>>::new());
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let tree = Tree::new();
    let layer = |file: &str| {
        file.split('/')
            .next()
            .unwrap_or(file)
            .trim_end_matches(".rs")
            .to_string()
    };
    // What each layer may not import; its unit-test files are exempt (a
    // handler's tests start a real store under the engine).
    let forbidden: [(&str, &[&str]); 5] = [
        (
            "model",
            &["store", "engine", "api", "net", "handlers", "monitor", "server"],
        ),
        ("store", &["engine", "api", "net", "handlers", "monitor", "server"]),
        ("engine", &["api", "net", "handlers", "monitor", "server"]),
        ("net", &["api", "engine", "handlers", "store", "server"]),
        ("api", &["store", "handlers", "server"]),
    ];
    let mut crossings = Vec::new();
    for (file, targets) in tree.imports() {
        if file.ends_with("tests.rs") {
            continue;
        }
        for target in targets {
            let (from, to) = (layer(&file), layer(&target));
            let handlers_reach_the_store = from == "handlers" && to == "store";
            let breaks_a_rule = forbidden
                .iter()
                .any(|(layer, below)| *layer == from && below.contains(&to.as_str()));
            if breaks_a_rule || handlers_reach_the_store {
                crossings.push(format!("{file} imports {target}"));
            }
        }
    }
    assert_eq!(crossings, Vec::<String>::new());
}

#[test]
fn the_engine_names_no_transport() {
    let mut named = Vec::new();
    for (file, text) in sources() {
        if !file.starts_with("engine/") {
            continue;
        }
        for transport in ["tonic::", "axum::", "hyper::", "prost::", "http::"] {
            if code(&text).contains(transport) {
                named.push(format!("{file} names {transport}"));
            }
        }
    }
    assert_eq!(named, Vec::<String>::new());
}
