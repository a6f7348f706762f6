//! A test that the domain folders of `host/src` import one another one way only: a loop between
//! two domains (each naming the other through `crate::`) fails the build's tests, with the loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Folder -> the other folders its code names through `crate::` (comments aside).
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let folders: BTreeSet<String> = std::fs::read_dir(src)
        .expect("host/src")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut graph = BTreeMap::new();
    for folder in &folders {
        let mut named = BTreeSet::new();
        for file in rust_files(&src.join(folder)) {
            let text = std::fs::read_to_string(&file).expect("source");
            let code = text.lines().filter(|l| !l.trim_start().starts_with("//"));
            for rest in code.flat_map(|line| line.split("crate::").skip(1)) {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if name != *folder && folders.contains(&name) {
                    named.insert(name);
                }
            }
        }
        graph.insert(folder.clone(), named);
    }
    graph
}

/// The `.rs` files below `dir`.
fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for path in std::fs::read_dir(&dir)
            .expect("folder")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
        {
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// A path `from` -> ... -> `to` through `graph`, if one exists.
fn path(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![from.to_string()]];
    while let Some(route) = stack.pop() {
        let last = route.last().expect("non-empty").clone();
        if last == to && route.len() > 1 {
            return Some(route);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in graph.get(&last).into_iter().flatten() {
            let mut longer = route.clone();
            longer.push(next.clone());
            stack.push(longer);
        }
    }
    None
}

#[test]
fn domain_folders_import_one_way() {
    let graph = imports(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(graph.contains_key("workflow") && graph.contains_key("lineage"));
    for folder in graph.keys() {
        if let Some(route) = path(&graph, folder, folder) {
            panic!(
                "an import loop between domain folders: {}",
                route.join(" -> ")
            );
        }
    }
}
