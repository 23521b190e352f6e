//! The library's modules import one another without cycles: every `crate::` and `super::` path
//! in `src/` (comments and strings left out) is an arrow from the module of its file to the
//! deepest module the path names; a child may use its parent (that is what a folder's module is
//! for), and any other circle fails with the arrows that make it. Unit tests (`#[cfg(test)]`
//! modules, inline or in files of their own) may reach anywhere to build their cases and are
//! left out. A new cycle fails CI here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path below `crate` (`["dns", "mux"]`); the root is empty.
type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `src/lib.rs` the root.
fn module_of(src: &Path, file: &Path) -> Option<Module> {
    let relative = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    match last.as_str() {
        "lib.rs" if parts.is_empty() => {}
        "main.rs" if parts.is_empty() => return None,
        "mod.rs" => {}
        name => parts.push(name.strip_suffix(".rs")?.to_string()),
    }
    Some(parts)
}

/// The code without comments, string and character literals (a URL in a string is no path).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && {
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            chars.get(i + 1 + hashes) == Some(&'"')
        } {
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            i += 2 + hashes;
            while i < chars.len() {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|c| *c == '#') {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && next == Some('\\') {
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The paths a `crate::`/`super::` path at the start of `rest` names, brace groups expanded
/// (`{a::B, c::{self, D}}`), each as its segments.
fn paths(rest: &str) -> Vec<Vec<String>> {
    fn ident(s: &str) -> (&str, &str) {
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        s.split_at(end)
    }
    fn walk(s: &str, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
        let mut consumed = 0;
        let mut current = prefix.to_vec();
        let mut s_rest = s;
        loop {
            let trimmed = s_rest.trim_start();
            consumed += s_rest.len() - trimmed.len();
            s_rest = trimmed;
            if let Some(inner) = s_rest.strip_prefix('{') {
                consumed += 1;
                let mut body = inner;
                loop {
                    let used = walk(body, &current, out);
                    consumed += used;
                    body = &body[used..];
                    let t = body.trim_start();
                    consumed += body.len() - t.len();
                    body = t;
                    if let Some(after) = body.strip_prefix(',') {
                        consumed += 1;
                        body = after;
                        continue;
                    }
                    if let Some(after) = body.strip_prefix('}') {
                        consumed += 1;
                        body = after;
                    }
                    break;
                }
                let _ = body;
                return consumed;
            }
            let (name, after) = ident(s_rest);
            if name.is_empty() {
                out.push(current);
                return consumed;
            }
            if name != "self" {
                current.push(name.to_string());
            }
            consumed += name.len();
            s_rest = after;
            match s_rest.strip_prefix("::") {
                Some(after) => {
                    consumed += 2;
                    s_rest = after;
                }
                None => {
                    out.push(current);
                    return consumed;
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(rest, &[], &mut out);
    out
}

/// The code without its `#[cfg(test)] mod NAME { ... }` blocks.
fn without_test_modules(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        let Some(block) = trimmed
            .strip_prefix("mod ")
            .and_then(|m| m.find(['{', ';']).map(|i| (&m[i..], m)))
            .filter(|(opening, _)| opening.starts_with('{'))
        else {
            rest = after;
            continue;
        };
        let mut depth = 0usize;
        let mut end = block.0.len();
        for (i, c) in block.0.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &block.0[end..];
    }
    out.push_str(rest);
    out
}

/// Strongly connected components of more than one module (Tarjan).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'e> {
        edges: &'e BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        on_stack: BTreeSet<Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit(v: &Module, st: &mut State<'_>) {
        let i = st.index.len();
        st.index.insert(v.clone(), i);
        st.low.insert(v.clone(), i);
        st.stack.push(v.clone());
        st.on_stack.insert(v.clone());
        for w in st.edges.get(v).into_iter().flatten() {
            if !st.index.contains_key(w) {
                visit(w, st);
                let lw = st.low[w];
                let lv = st.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if st.on_stack.contains(w) {
                let iw = st.index[w];
                let lv = st.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if st.low[v] == st.index[v] {
            let mut component = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on_stack.remove(&w);
                let done = w == *v;
                component.push(w);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                st.out.push(component);
            }
        }
    }
    let mut st = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !st.index.contains_key(v) {
            visit(v, &mut st);
        }
    }
    st.out
}

/// Every arrow between the library's modules, but for a child's use of its ancestors.
fn module_arrows(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeMap<Module, PathBuf> = files
        .iter()
        .filter_map(|f| module_of(src, f).map(|m| (m, f.clone())))
        .collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, file) in modules
        .iter()
        .filter(|(m, _)| m.last().is_none_or(|last| last != "tests"))
    {
        let code = without_test_modules(&code_only(&std::fs::read_to_string(file).unwrap()));
        let arrows = edges.entry(module.clone()).or_default();
        for (at, _) in code.match_indices("::") {
            let before = &code[..at];
            let word_start = before
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            let word = &before[word_start..];
            // Only paths that start here: `crate::` or a chain of `super::`.
            let preceded = before[..word_start].ends_with("::");
            if preceded || (word != "crate" && word != "super") {
                continue;
            }
            let mut base: Module = if word == "crate" {
                Vec::new()
            } else {
                module[..module.len().saturating_sub(1)].to_vec()
            };
            let mut rest = &code[at + 2..];
            while let Some(after) = rest.strip_prefix("super::") {
                base.pop();
                rest = after;
            }
            for path in paths(rest) {
                let mut full = base.clone();
                full.extend(path);
                // The deepest module the path names.
                let target = (0..=full.len())
                    .rev()
                    .map(|n| full[..n].to_vec())
                    .find(|m| modules.contains_key(m))
                    .unwrap_or_default();
                let is_ancestor = module.starts_with(&target);
                if !is_ancestor {
                    arrows.insert(target);
                }
            }
        }
    }
    edges
}

#[test]
fn the_library_has_no_import_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = module_arrows(&src);
    // The check itself: it sees arrows at all (a parser that finds nothing passes everything).
    let dns = vec!["dns".to_string()];
    assert!(
        edges
            .get(&vec!["audit".to_string(), "discover".to_string()])
            .is_some_and(|t| t.contains(&dns)),
        "the arrow audit::discover -> dns was not found: {edges:?}"
    );
    let found = cycles(&edges);
    let show = |m: &Module| {
        if m.is_empty() {
            "crate".to_string()
        } else {
            m.join("::")
        }
    };
    let described: Vec<String> = found
        .iter()
        .map(|component| {
            let arrows: Vec<String> = component
                .iter()
                .flat_map(|from| {
                    edges[from]
                        .iter()
                        .filter(|to| component.contains(to))
                        .map(move |to| format!("{} -> {}", show(from), show(to)))
                })
                .collect();
            arrows.join(", ")
        })
        .collect();
    assert!(
        found.is_empty(),
        "import cycles between modules:\n{}",
        described.join("\n")
    );
}

#[test]
fn the_cycle_check_finds_a_planted_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a; mod b; mod c;").unwrap();
    // a -> b through a brace group, b -> c, c -> a through super; a's child uses a (allowed).
    std::fs::write(
        src.join("a.rs"),
        "mod inner;\nuse crate::{x::Y, b::{self, Thing}};\n// crate::c::Nothing (a comment)\nconst S: &str = \"crate::c::X\";",
    )
    .unwrap();
    std::fs::write(src.join("a/inner.rs"), "use super::Up; use crate::a::More;").unwrap();
    std::fs::write(src.join("b.rs"), "fn f() { crate::c::g(); }").unwrap();
    std::fs::write(
        src.join("c.rs"),
        "use super::a::Thing;\n#[cfg(test)]\nmod tests { use crate::b::Test; }",
    )
    .unwrap();
    let edges = module_arrows(src);
    let found = cycles(&edges);
    assert_eq!(
        found,
        vec![vec![
            vec!["a".to_string()],
            vec!["b".to_string()],
            vec!["c".to_string()]
        ]],
        "{edges:?}"
    );
    // Without the last arrow there is none (the comment, the string and the unit tests' import
    // are not arrows).
    std::fs::write(
        src.join("c.rs"),
        "fn g() {}\n#[cfg(test)]\nmod tests { use crate::a::Test; }",
    )
    .unwrap();
    assert!(cycles(&module_arrows(src)).is_empty());
}
