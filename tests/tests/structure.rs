//! The code's shape, checked like its behaviour: no function over 80 lines
//! outside tests, no import cycle between a crate's modules, and no
//! dependency a crate does not use. Reads the workspace's sources as text
//! (comments and string literals blanked out first), so it needs no tool
//! beyond `cargo test`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest function body allowed outside tests, in lines (signature to
/// closing brace).
const MAX_FN_LINES: usize = 80;

const CRATES: [&str; 7] = ["shared", "server", "client-core", "client", "bots", "attack", "tests"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the workspace").to_path_buf()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return files };
    for entry in entries.flatten() {
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

/// The source with comments, strings and char literals blanked to spaces
/// (newlines kept, so line numbers hold).
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if let Some(len) = raw_string_start(&chars, i) {
            // r"…", r#"…"#, br#"…"#: ends at a quote followed by as many #.
            let hashes = chars[i..i + len].iter().filter(|&&c| c == '#').count();
            out.extend(std::iter::repeat_n(' ', len));
            i += len;
            while i < chars.len() {
                let closes = chars[i] == '"' && (0..hashes).all(|k| chars.get(i + 1 + k) == Some(&'#'));
                if closes {
                    out.extend(std::iter::repeat_n(' ', 1 + hashes));
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let skip = if chars[i] == '\\' { 2 } else { 1 };
                for k in 0..skip {
                    out.push(chars.get(i + k).map_or(' ', |&c| blank(c)));
                }
                i += skip;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'), or a lifetime ('a).
            let end = if next == Some('\\') {
                (i + 2..chars.len()).find(|&k| chars[k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    out.extend(std::iter::repeat_n(' ', end + 1 - i));
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The length of a raw string's opening (`r"`, `r#"`, `br##"`…) at `i`.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut k = i;
    if chars.get(k) == Some(&'b') {
        k += 1;
    }
    if chars.get(k) != Some(&'r') {
        return None;
    }
    k += 1;
    while chars.get(k) == Some(&'#') {
        k += 1;
    }
    (chars.get(k) == Some(&'"')).then_some(k + 1 - i)
}

/// The index just past the brace block opening at `open` (a `{`).
fn block_end(code: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (k, &b) in code.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// The code without its `#[cfg(test)]` items (blanked, lines kept).
fn without_tests(code: &str) -> String {
    let mut bytes = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]").map(|k| k + from) {
        let item_start = at;
        // The item ends at its block's close, or at a `;` before any block.
        let rest = &code[at..];
        let end = match (rest.find('{'), rest.find(';')) {
            (Some(open), Some(semi)) if semi < open => at + semi + 1,
            (Some(open), _) => block_end(code.as_bytes(), at + open),
            (None, Some(semi)) => at + semi + 1,
            (None, None) => code.len(),
        };
        for b in &mut bytes[item_start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        from = end;
    }
    String::from_utf8(bytes).expect("only ASCII was blanked")
}

fn line_of(code: &str, at: usize) -> usize {
    code[..at].bytes().filter(|&b| b == b'\n').count() + 1
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every `fn` with a body: (name, first line, lines).
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("fn ").map(|k| k + from) {
        from = at + 3;
        if at > 0 && is_ident(bytes[at - 1]) {
            continue;
        }
        let name: String =
            code[at + 3..].trim_start().bytes().take_while(|&b| is_ident(b)).map(char::from).collect();
        if name.is_empty() {
            continue; // `fn(` types
        }
        let rest = &code[at..];
        let (Some(open), semi) = (rest.find('{'), rest.find(';')) else { continue };
        if semi.is_some_and(|semi| semi < open) {
            continue; // a declaration without a body
        }
        let end = block_end(bytes, at + open);
        let (first, last) = (line_of(code, at), line_of(code, end - 1));
        found.push((name, first, last - first + 1));
    }
    found
}

#[test]
fn no_function_outside_tests_is_over_80_lines() {
    let root = workspace();
    let mut long = Vec::new();
    for krate in CRATES {
        for dir in ["src", "benches"] {
            for file in rust_files(&root.join(krate).join(dir)) {
                let source = std::fs::read_to_string(&file).expect("readable source");
                let code = without_tests(&code_only(&source));
                for (name, line, lines) in functions(&code) {
                    if lines > MAX_FN_LINES {
                        let path = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
                        long.push(format!("{path}:{line} fn {name} is {lines} lines"));
                    }
                }
            }
        }
    }
    assert!(long.is_empty(), "functions over {MAX_FN_LINES} lines:\n{}", long.join("\n"));
}

#[test]
fn the_scanner_sees_functions_and_skips_strings_comments_and_tests() {
    let source = r##"
        fn one() {
            let s = "} fn fake() {";
            let r = r#"}"#;
            let c = '}';
            // fn commented() {}
        }
        fn two<'a>(x: &'a str) -> &'a str { x }
        trait T { fn declared(&self); }
        #[cfg(test)]
        mod tests { fn hidden() {} }
    "##;
    let code = without_tests(&code_only(source));
    let names: Vec<(String, usize)> = functions(&code).into_iter().map(|(n, _, lines)| (n, lines)).collect();
    assert_eq!(names, [("one".to_owned(), 6), ("two".to_owned(), 1)]);
}

/// A crate's library modules by path (`""` is the crate root), from its
/// files: `src/lib.rs`, `src/a.rs`, `src/a/mod.rs`, `src/a/b.rs`.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut modules = BTreeMap::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).expect("under src").with_extension("");
        let parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts[0] == "bin" || parts == ["main"] {
            continue; // binaries are crates of their own
        }
        let name = match parts.last().map(String::as_str) {
            Some("lib") if parts.len() == 1 => String::new(),
            Some("mod") => parts[..parts.len() - 1].join("::"),
            _ => parts.join("::"),
        };
        modules.insert(name, file);
    }
    modules
}

fn parent(module: &str) -> String {
    module.rsplit_once("::").map_or(String::new(), |(parent, _)| parent.to_owned())
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() { name.to_owned() } else { format!("{base}::{name}") }
}

/// The module a path that starts in module `base` lands in: the longest
/// prefix of `segments` that names a module.
fn resolve(modules: &BTreeMap<String, PathBuf>, base: &str, segments: &[&str]) -> String {
    let mut at = base.to_owned();
    for segment in segments {
        let deeper = join(&at, segment);
        if !modules.contains_key(&deeper) {
            break;
        }
        at = deeper;
    }
    at
}

/// The path segments following `prefix` at `at` (`a::b::{c, d::e}` gives
/// `[a, b, c]` and `[a, b, d, e]`).
fn paths_after(code: &str, at: usize) -> Vec<Vec<String>> {
    let rest = &code[at..];
    let mut segments = Vec::new();
    let mut k = 0;
    let bytes = rest.as_bytes();
    loop {
        while k < bytes.len() && bytes[k] == b' ' {
            k += 1;
        }
        if bytes.get(k) == Some(&b'{') {
            let end = block_end(bytes, k);
            let inner = &rest[k + 1..end - 1];
            let mut all = Vec::new();
            let mut depth = 0;
            let mut start = 0;
            for (i, b) in inner.bytes().enumerate() {
                match b {
                    b'{' => depth += 1,
                    b'}' => depth -= 1,
                    b',' if depth == 0 => {
                        all.push(&inner[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            all.push(&inner[start..]);
            return all
                .into_iter()
                .filter(|item| !item.trim().is_empty())
                .flat_map(|item| {
                    let offset = inner.as_ptr() as usize - code.as_ptr() as usize;
                    let item_at = offset + (item.as_ptr() as usize - inner.as_ptr() as usize);
                    paths_after(code, item_at)
                        .into_iter()
                        .map(|tail| segments.iter().cloned().chain(tail).collect::<Vec<String>>())
                        .collect::<Vec<_>>()
                })
                .collect();
        }
        let word: String = rest[k..].bytes().take_while(|&b| is_ident(b)).map(char::from).collect();
        if word.is_empty() {
            return vec![segments];
        }
        k += word.len();
        segments.push(word);
        if rest[k..].trim_start().starts_with("::") {
            k += rest[k..].find("::").expect("just seen") + 2;
        } else {
            return vec![segments];
        }
    }
}

/// The modules each module of a crate refers to (not counting itself).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(src);
    let mut graph = BTreeMap::new();
    for (module, file) in &modules {
        let source = std::fs::read_to_string(file).expect("readable source");
        let code = without_tests(&code_only(&source));
        let bytes = code.as_bytes();
        let mut uses = BTreeSet::new();
        let mut from = 0;
        while let Some(at) = code[from..].find("::").map(|k| k + from) {
            from = at + 2;
            // The word before `::`, if it starts the path.
            let start = (0..at).rev().take_while(|&k| is_ident(bytes[k])).last().unwrap_or(at);
            if start > 0 && (bytes[start - 1] == b':' || is_ident(bytes[start - 1])) {
                continue;
            }
            let head = &code[start..at];
            let base = match head {
                "crate" => String::new(),
                "super" => parent(module),
                "self" => module.clone(),
                // A child module named without `self::`.
                child if modules.contains_key(&join(module, child)) => module.clone(),
                _ => continue,
            };
            let after = if matches!(head, "crate" | "super" | "self") { at + 2 } else { start };
            for path in paths_after(&code, after) {
                let segments: Vec<&str> = path.iter().map(String::as_str).collect();
                let target = resolve(&modules, &base, &segments);
                if target != *module {
                    uses.insert(target);
                }
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

/// One cycle in `graph`, if it has one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let root = workspace();
    let mut cycles = Vec::new();
    for krate in CRATES {
        let graph = module_graph(&root.join(krate).join("src"));
        if let Some(cycle) = find_cycle(&graph) {
            let named: Vec<String> =
                cycle.iter().map(|m| if m.is_empty() { "(root)".to_owned() } else { m.clone() }).collect();
            cycles.push(format!("{krate}: {}", named.join(" → ")));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_module_graph_sees_crate_super_and_child_paths() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let src = dir.path();
    std::fs::create_dir(src.join("app")).expect("mkdir");
    let write = |path: &str, text: &str| std::fs::write(src.join(path), text).expect("write");
    write("lib.rs", "pub mod a; pub mod app;");
    write("a.rs", "use crate::app::{net::Link, Screen};\n/// crate::lib_doc::X\nfn f() {}");
    write("app/mod.rs", "mod net; fn g() { net::go(); }");
    write("app/net.rs", "use super::Screen; #[cfg(test)] mod tests { use crate::a::X; }");
    let graph = module_graph(src);
    let edges = |m: &str| graph[m].iter().cloned().collect::<Vec<_>>();
    assert_eq!(edges("a"), ["app", "app::net"]);
    assert_eq!(edges("app"), ["app::net"]);
    assert_eq!(edges("app::net"), ["app"], "test-only paths do not count");
    assert_eq!(find_cycle(&graph), Some(vec!["app".into(), "app::net".into(), "app".into()]));
}

/// A crate's dependencies as named in its manifest (`foo-bar` as
/// `foo_bar`), minus those it lists under
/// `[package.metadata.cargo-machete] ignored`.
fn dependencies(manifest: &str) -> BTreeSet<String> {
    let mut deps = BTreeSet::new();
    let mut ignored = BTreeSet::new();
    let mut section = String::new();
    for line in manifest.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.to_owned();
            // `[dependencies.foo]`
            if let Some((kind, name)) = header.rsplit_once('.')
                && kind.ends_with("dependencies")
            {
                deps.insert(name.replace('-', "_"));
            }
            continue;
        }
        if section.ends_with("dependencies") {
            let name: String =
                line.chars().take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_').collect();
            if !name.is_empty() {
                deps.insert(name.replace('-', "_"));
            }
        }
        if section == "package.metadata.cargo-machete"
            && let Some(list) = line.strip_prefix("ignored").and_then(|l| l.trim_start().strip_prefix('='))
        {
            ignored.extend(
                list.split(['[', ']', ',', '"'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.replace('-', "_")),
            );
        }
    }
    deps.difference(&ignored).cloned().collect()
}

#[test]
fn every_dependency_is_used() {
    let root = workspace();
    let mut unused = Vec::new();
    for krate in CRATES {
        let dir = root.join(krate);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("a manifest");
        let mut code = String::new();
        for sub in ["src", "tests", "benches", "examples"] {
            for file in rust_files(&dir.join(sub)) {
                code.push_str(&code_only(&std::fs::read_to_string(file).expect("readable source")));
                code.push('\n');
            }
        }
        for dep in dependencies(&manifest) {
            let used = code.match_indices(dep.as_str()).any(|(at, _)| {
                let before = code[..at].bytes().next_back();
                let after = &code[at + dep.len()..];
                !before.is_some_and(|b| is_ident(b) || b == b':')
                    && (after.starts_with("::") || after.starts_with('!') || code[..at].ends_with("use "))
            });
            if !used {
                unused.push(format!("{krate}: {dep}"));
            }
        }
    }
    assert!(
        unused.is_empty(),
        "dependencies no code names (remove them, or list them under \
         [package.metadata.cargo-machete] ignored with the reason):\n{}",
        unused.join("\n")
    );
}

#[test]
fn the_join_screen_offers_the_protocols_palette() {
    let page = std::fs::read_to_string(workspace().join("web/index.html")).expect("web/index.html");
    for (index, rgb) in arena_shared::protocol::PALETTE.iter().enumerate() {
        let button = format!("data-color=\"{index}\" style=\"background:#{rgb:06x}\"");
        assert!(page.contains(&button), "the join screen's colour {index} should be #{rgb:06x}");
    }
    assert!(
        !page.contains(&format!("data-color=\"{}\"", arena_shared::protocol::PALETTE.len())),
        "no more colours"
    );
}
