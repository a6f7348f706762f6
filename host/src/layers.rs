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
        let mut pending = vec![src.join(folder)];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir)
                .expect("folder")
                .filter_map(|e| e.ok())
            {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&path).expect("source");
                    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                        for (_, rest) in line
                            .match_indices("crate::")
                            .map(|(i, _)| line.split_at(i + 7))
                        {
                            let name: String = rest
                                .chars()
                                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                                .collect();
                            if name != *folder && folders.contains(&name) {
                                named.insert(name);
                            }
                        }
                    }
                }
            }
        }
        graph.insert(folder.clone(), named);
    }
    graph
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
