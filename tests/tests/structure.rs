//! The code's shape, checked like its behaviour: each crate's files form a
//! DAG (no file reaches, through `crate::` paths, back to itself), and so
//! do its top-level modules (a folder is one job: none uses a job that
//! uses it back, so each stands on a floor of its own). The
//! sources are parsed with `syn`, the parser the compiler's own macros
//! use. Function length is clippy's `too_many_lines` (80, `clippy.toml`)
//! and unused dependencies are `cargo machete`'s, both run by
//! `scripts/test.sh`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

const CRATES: [&str; 8] =
    ["shared", "server", "client-core", "client", "bots", "attack", "baseline", "tests"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the workspace").to_path_buf()
}

/// A file's module path from its crate's `src/`: `room/world/mod.rs` is
/// `room::world`, `lib.rs` and `main.rs` the root (empty).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src/").with_extension("");
    let parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .filter(|part| part != "mod")
        .collect();
    match parts.as_slice() {
        [only] if only == "lib" || only == "main" => String::new(),
        _ => parts.join("::"),
    }
}

/// Every path a file names into its own crate (in `use` trees and in
/// code), from the crate's root: `crate::room::world::World` is
/// `room::world::World`, and in `room/mod.rs` `self::core::Room` is
/// `room::core::Room` (a re-export is a use).
struct CratePaths {
    /// The file's own module path, for `self::` and `super::`.
    module: Vec<String>,
    paths: BTreeSet<String>,
}

impl CratePaths {
    fn new(module: &str) -> Self {
        let module = module.split("::").filter(|m| !m.is_empty()).map(str::to_owned).collect();
        CratePaths { module, paths: BTreeSet::new() }
    }

    fn add(&mut self, segments: &[String]) {
        let absolute: Option<Vec<String>> = match segments.first().map(String::as_str) {
            Some("crate") => Some(segments[1..].to_vec()),
            Some("self") => Some(self.module.iter().chain(&segments[1..]).cloned().collect()),
            Some("super") => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                let base = self.module.len().checked_sub(ups);
                base.map(|base| self.module[..base].iter().chain(&segments[ups..]).cloned().collect())
            }
            _ => None,
        };
        if let Some(path) = absolute.filter(|path| !path.is_empty()) {
            self.paths.insert(path.join("::"));
        }
    }
}

impl<'ast> Visit<'ast> for CratePaths {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.add(&path.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>());
        syn::visit::visit_path(self, path);
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        fn walk(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut CratePaths) {
            match tree {
                syn::UseTree::Path(path) => {
                    prefix.push(path.ident.to_string());
                    walk(&path.tree, prefix, out);
                    prefix.pop();
                }
                syn::UseTree::Name(name) => {
                    prefix.push(name.ident.to_string());
                    out.add(prefix);
                    prefix.pop();
                }
                syn::UseTree::Rename(rename) => {
                    prefix.push(rename.ident.to_string());
                    out.add(prefix);
                    prefix.pop();
                }
                syn::UseTree::Glob(_) => out.add(prefix),
                syn::UseTree::Group(group) => group.items.iter().for_each(|tree| walk(tree, prefix, out)),
            }
        }
        walk(&item.tree, &mut Vec::new(), self);
    }

    /// Tests may reach anywhere: they are not part of the graph.
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        let is_test = item.attrs.iter().any(|attr| {
            attr.path().is_ident("cfg") && attr.parse_args::<syn::Ident>().is_ok_and(|arg| arg == "test")
        });
        if !is_test {
            syn::visit::visit_item_mod(self, item);
        }
    }
}

/// Each file of the crate at `src` (by module path) and the files it uses.
fn file_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = rust_files(src);
    let modules: BTreeSet<String> = files.iter().map(|file| module_of(src, file)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(src, file);
        let source = std::fs::read_to_string(file).expect("a readable source file");
        let parsed =
            syn::parse_file(&source).unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
        let mut paths = CratePaths::new(&module);
        paths.visit_file(&parsed);
        // A path names the longest module it starts with (the rest is an item).
        let used: BTreeSet<String> = paths
            .paths
            .iter()
            .filter_map(|path| {
                let parts: Vec<&str> = path.split("::").collect();
                (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|m| modules.contains(m))
            })
            // A module may use what its ancestors hold (their face); a parent
            // that re-exports its child's items uses that child.
            .filter(|used| *used != module && !module.starts_with(&format!("{used}::")) && !used.is_empty())
            .collect();
        graph.insert(module, used);
    }
    graph
}

/// The same graph between top-level modules: `room::world` counts as
/// `room`, and a file's uses inside its own top-level module vanish.
fn job_graph(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let job = |module: &str| module.split("::").next().unwrap_or_default().to_owned();
    let mut jobs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, used) in graph.iter().filter(|(module, _)| !module.is_empty()) {
        let entry = jobs.entry(job(module)).or_default();
        entry.extend(used.iter().map(|u| job(u)).filter(|u| *u != job(module)));
    }
    jobs
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// A cycle in `graph`, as the files around it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            return Some(path[start..].to_vec());
        }
        if !done.insert(node.to_owned()) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn no_crate_has_an_import_cycle_between_its_files_or_its_jobs() {
    for krate in CRATES {
        let src = workspace().join(krate).join("src");
        let graph = file_graph(&src);
        assert!(!graph.is_empty(), "{krate} has sources");
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{krate}'s files use each other in a circle: {}", cycle.join(" -> "));
        }
        if let Some(cycle) = find_cycle(&job_graph(&graph)) {
            panic!("{krate}'s top-level modules use each other in a circle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_file_graph_sees_use_trees_and_paths_in_code_and_finds_a_circle() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("a folder");
        std::fs::write(path, text).expect("written");
    };
    write("lib.rs", "pub mod a;\npub mod app;");
    write(
        "a.rs",
        "use crate::app::{net::Link, Screen as S};\n/// crate::doc_only::X\nfn f() { crate::app::go(); }",
    );
    write(
        "app/mod.rs",
        "pub mod net;\npub use self::net::Link;\npub fn go() {}\n#[cfg(test)]\nmod tests { use crate::a::f; }",
    );
    write("app/net.rs", "pub struct Link; fn g() -> crate::a::Thing { todo!() }");
    let graph = file_graph(dir.path());
    let uses = |module: &str| graph[module].iter().cloned().collect::<Vec<_>>();
    assert_eq!(uses("a"), ["app", "app::net"], "a use tree and a call, not a doc comment");
    assert_eq!(uses("app"), ["app::net"], "a re-export uses the child; a test module reaches anywhere");
    assert_eq!(uses("app::net"), ["a"]);
    let cycle = find_cycle(&graph).expect("a -> app::net -> a");
    assert!(cycle.contains(&"a".to_owned()) && cycle.contains(&"app::net".to_owned()), "{cycle:?}");

    // Without the circle between files, the jobs still use each other.
    write("app/net.rs", "pub struct Link;");
    write("app/db.rs", "fn g() -> crate::a::Thing { todo!() }");
    write("app/mod.rs", "pub mod net;\npub mod db;\npub fn go() {}");
    let graph = file_graph(dir.path());
    assert_eq!(find_cycle(&graph), None, "a -> app::net, app::db -> a: no circle between files");
    let jobs = job_graph(&graph);
    assert_eq!(jobs["a"].iter().collect::<Vec<_>>(), ["app"]);
    assert_eq!(
        jobs["app"].iter().collect::<Vec<_>>(),
        ["a"],
        "app::db's use is app's; app -> app::net is inside"
    );
    assert!(find_cycle(&jobs).is_some(), "a -> app -> a between the jobs");
}
