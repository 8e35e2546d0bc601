//! The shape the production code keeps: no file over `MAX_FILE_LINES`, and no two files of a
//! crate that import each other, directly or through others. Functions over 60 lines are
//! clippy's `too_many_lines` (the threshold is in clippy.toml).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub const MAX_FILE_LINES: usize = 500;

/// The source folders of the code that runs in production: the common crate, the functions and
/// the operator CLI.
pub fn production_sources(workspace: &Path) -> Result<Vec<PathBuf>, String> {
    let mut sources =
        vec![workspace.join("shared/src"), workspace.join("opsctl/src"), workspace.join("engine-task/src")];
    let functions = workspace.join("functions");
    let entries = std::fs::read_dir(&functions).map_err(|e| format!("cannot list {}: {e}", functions.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("cannot list {}: {e}", functions.display()))?.path().join("src");
        if path.is_dir() {
            sources.push(path);
        }
    }
    sources.sort();
    Ok(sources)
}

/// What is wrong with the shape of the crates whose sources are `sources`, one line each.
pub fn problems(workspace: &Path, sources: &[PathBuf]) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for src in sources {
        let files = modules(src)?;
        for file in files.values() {
            let lines = file.text.lines().count();
            if lines > MAX_FILE_LINES && !file.feature_gated {
                problems.push(format!("{}: {lines} lines, more than {MAX_FILE_LINES}", shown(workspace, &file.path)));
            }
        }
        for cycle in cycles(&files) {
            let chain: Vec<String> = cycle.iter().map(|m| shown(workspace, &files[m].path)).collect();
            problems.push(format!("import cycle: {}", chain.join(" -> ")));
        }
    }
    Ok(problems)
}

fn shown(workspace: &Path, path: &Path) -> String {
    path.strip_prefix(workspace).unwrap_or(path).display().to_string()
}

struct SourceFile {
    path: PathBuf,
    text: String,
    /// Built only with a feature (the test doubles): not production code.
    feature_gated: bool,
}

/// Every file of a crate by its module path ("" for the crate root, "backup::take").
fn modules(src: &Path) -> Result<BTreeMap<String, SourceFile>, String> {
    let mut files = BTreeMap::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.starts_with(src.join("bin")) {
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let module = module_path(src, &path);
                let feature_gated = module.split("::").next().is_some_and(|top| top == "test_util");
                files.insert(module, SourceFile { path, text, feature_gated });
            }
        }
    }
    Ok(files)
}

fn module_path(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts.join("::")
}

/// The code without comments and without `#[cfg(test)]` modules, whose imports are the
/// tests' own.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0;
    let mut test_attribute = false;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or_default();
        let trimmed = line.trim();
        if trimmed.starts_with("#[cfg(test)]") {
            test_attribute = true;
            continue;
        }
        let opens = line.matches('{').count() as i32;
        let closes = line.matches('}').count() as i32;
        if test_attribute && skip_depth.is_none() && trimmed.starts_with("mod ") && opens > 0 {
            skip_depth = Some(depth);
        }
        test_attribute = false;
        depth += opens - closes;
        match skip_depth {
            Some(start) if depth <= start => skip_depth = None,
            Some(_) => {}
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The `use` statements of `code`: whether each re-exports (`pub use`), and its paths with the
/// braces expanded ("crate::a::{b, c::D}" gives "crate::a::b" and "crate::a::c::D"), each with
/// the name it binds.
fn use_statements(code: &str) -> Vec<(bool, Vec<(String, String)>)> {
    let mut statements = Vec::new();
    let mut rest = code;
    while let Some(at) = find_use(rest) {
        let statement = &rest[at..];
        let end = statement.find(';').unwrap_or(statement.len());
        let before = rest[..at].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        let body: String = statement["use".len()..end].chars().filter(|c| !c.is_whitespace()).collect();
        statements.push((public, expand(&body)));
        rest = &statement[end.min(statement.len())..];
    }
    statements
}

/// The next `use` keyword that starts a statement.
fn find_use(code: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = code[from..].find("use ") {
        let at = from + found;
        let starts = code[..at].chars().last().is_none_or(|c| c.is_whitespace() || c == ';' || c == '{' || c == '}');
        let leading = code[..at].trim_end();
        let statement = leading.is_empty()
            || leading.ends_with(';')
            || leading.ends_with('{')
            || leading.ends_with('}')
            || leading.ends_with("pub")
            || leading.ends_with(')')
            || leading.ends_with(']');
        if starts && statement {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

fn expand(tree: &str) -> Vec<(String, String)> {
    let Some(open) = tree.find('{') else {
        let (path, alias) = match tree.split_once("as") {
            Some((path, alias)) if tree.contains("::") && !alias.contains("::") => (path, alias),
            _ => (tree, ""),
        };
        let name = if alias.is_empty() { path.rsplit("::").next().unwrap_or(path) } else { alias };
        return vec![(path.to_owned(), name.to_owned())];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    split_top_level(inner)
        .into_iter()
        .flat_map(|part| expand(part).into_iter().map(|(path, name)| (format!("{prefix}{path}"), name)))
        .collect()
}

fn split_top_level(list: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// A path as the modules it names from the crate root, or `None` when it leaves the crate.
fn absolute(files: &BTreeMap<String, SourceFile>, module: &str, path: &str) -> Option<Vec<String>> {
    let mut segments = path.split("::").filter(|s| !s.is_empty());
    let first = segments.next()?;
    let mut base: Vec<String> = module.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect();
    match first {
        "crate" => base.clear(),
        "self" => {}
        "super" => {
            base.pop();
        }
        child if files.contains_key(&[module, child].join("::").trim_start_matches("::").to_owned()) => {
            base.push(child.to_owned())
        }
        _ => return None,
    }
    for segment in segments {
        if segment == "super" {
            base.pop();
        } else {
            base.push(segment.to_owned());
        }
    }
    Some(base)
}

/// The file that defines what `segments` names: the deepest module file on the path, followed
/// through its re-exports.
fn resolve(files: &BTreeMap<String, SourceFile>, segments: &[String], hops: usize) -> Option<String> {
    let (module, rest) = (0..=segments.len())
        .rev()
        .map(|n| (segments[..n].join("::"), &segments[n..]))
        .find(|(module, _)| files.contains_key(module))?;
    let Some(name) = rest.first() else { return Some(module) };
    if hops == 0 {
        return Some(module);
    }
    for (public, paths) in use_statements(&code(&files[&module].text)) {
        for (path, bound) in paths.into_iter().filter(|_| public) {
            if (bound == *name || bound == "*")
                && let Some(target) = absolute(files, &module, &path)
            {
                let mut target = if bound == "*" { [target, vec![name.clone()]].concat() } else { target };
                target.extend(rest[1..].iter().cloned());
                if let Some(found) = resolve(files, &target, hops - 1).filter(|f| *f != module) {
                    return Some(found);
                }
            }
        }
    }
    Some(module)
}

/// Which files each file imports from, re-exports aside (they are the module tree's shape, not
/// a dependency of the file's own code).
fn imports(files: &BTreeMap<String, SourceFile>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (module, file) in files {
        let code = code(&file.text);
        let mut paths: Vec<String> = use_statements(&code)
            .into_iter()
            .filter(|(public, _)| !public)
            .flat_map(|(_, paths)| paths.into_iter().map(|(path, _)| path))
            .collect();
        paths.extend(inline_paths(&code));
        let targets: BTreeSet<String> = paths
            .iter()
            .filter_map(|path| absolute(files, module, path))
            .filter_map(|segments| resolve(files, &segments, 4))
            .filter(|target| target != module)
            .collect();
        graph.insert(module.clone(), targets);
    }
    graph
}

/// Paths written in the code itself, `crate::a::b(...)` or `super::c::D`.
fn inline_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(found) = code[from..].find(start) {
            let at = from + found;
            let preceded = code[..at].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            let end = code[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |n| at + n);
            if !preceded {
                paths.push(code[at..end].trim_end_matches(':').to_owned());
            }
            from = end.max(at + start.len());
        }
    }
    paths
}

/// Each set of files that import each other, as one chain that closes on its start.
fn cycles(files: &BTreeMap<String, SourceFile>) -> Vec<Vec<String>> {
    let graph = imports(files);
    let mut cycles = Vec::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for start in graph.keys() {
        if reported.contains(start) {
            continue;
        }
        if let Some(path) = path_back(&graph, start) {
            reported.extend(path.iter().cloned());
            cycles.push(path);
        }
    }
    cycles
}

/// A shortest chain of imports from `start` back to itself.
fn path_back(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
    let mut frontier = vec![start];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for node in frontier {
            for target in graph.get(node).into_iter().flatten() {
                if target == start {
                    // Walked back from `node`, the chain ends at `start`, which has no previous.
                    let mut chain = vec![node.to_owned()];
                    let mut at = node;
                    while let Some(before) = previous.get(at) {
                        chain.push((*before).to_owned());
                        at = before;
                    }
                    chain.reverse();
                    chain.push(start.to_owned());
                    return Some(chain);
                }
                if !previous.contains_key(target.as_str()) && target != start {
                    previous.insert(target, node);
                    next.push(target.as_str());
                }
            }
        }
        frontier = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problems of a crate made of `files`, paths shown from its `src`.
    fn problems_of(files: &[(&str, &str)]) -> Vec<String> {
        let dir = tempfile::tempdir().expect("a temporary folder");
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("a folder");
            std::fs::write(path, text).expect("a file");
        }
        problems(dir.path(), &[dir.path().to_path_buf()]).expect("readable")
    }

    #[test]
    fn two_siblings_that_import_each_other_through_a_re_export_are_a_cycle() {
        let problems = problems_of(&[
            ("lib.rs", "pub mod backup;\n"),
            ("backup/mod.rs", "mod dump;\nmod take;\npub use take::Plan;\npub use dump::stream;\n"),
            ("backup/dump.rs", "use super::Plan;\npub fn stream(_: &Plan) {}\n"),
            ("backup/take.rs", "pub struct Plan;\nfn run(p: &Plan) { crate::backup::stream(p) }\n"),
        ]);
        assert_eq!(problems, ["import cycle: backup/dump.rs -> backup/take.rs -> backup/dump.rs"]);
    }

    #[test]
    fn a_parent_re_exporting_its_children_and_children_using_each_other_one_way_are_no_cycle() {
        let problems = problems_of(&[
            ("lib.rs", "pub mod backup;\npub use backup::Plan;\n"),
            ("backup/mod.rs", "mod plan;\nmod take;\npub use plan::Plan;\npub use take::{Backup, run};\n"),
            ("backup/plan.rs", "pub struct Plan;\n"),
            ("backup/take.rs", "use super::plan::Plan;\npub struct Backup;\npub fn run(_: &Plan) {}\n"),
        ]);
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn a_long_file_is_named_with_its_length_and_test_modules_import_freely() {
        let long = "fn f() {}\n".repeat(MAX_FILE_LINES + 1);
        let problems = problems_of(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", &long),
            ("b.rs", "pub fn g() {}\n#[cfg(test)]\nmod tests {\n    use crate::a::f;\n}\n"),
        ]);
        assert_eq!(problems, [format!("a.rs: {} lines, more than {MAX_FILE_LINES}", MAX_FILE_LINES + 1)]);
    }
}
