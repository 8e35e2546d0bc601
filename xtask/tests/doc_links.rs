//! Every relative link in the repository's Markdown resolves: the file it names exists, and an
//! anchor it names (`file.md#anchor`, `#anchor`) is a heading of the target, by GitHub's slug
//! rules. Absolute URLs are not checked. Links inside fenced code blocks and inline code are
//! not links.

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The repository root: the workspace `xtask` lives in.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Every `*.md` under `dir`, skipping build output, git's directory and hidden directories.
fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if name == "target" || name == "node_modules" || name.starts_with('.') {
                continue;
            }
            markdown_files(&path, found);
        } else if name.ends_with(".md") {
            found.push(path);
        }
    }
}

/// A link found in a Markdown file: its 1-based line and its target as written.
#[derive(Debug)]
struct Link {
    line: usize,
    target: String,
}

/// The lines of a Markdown file outside fenced code blocks, with inline code spans blanked
/// (replaced by spaces of the same length, so nothing inside them is read as a link).
fn prose_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map(|c| trimmed.chars().take_while(|x| *x == c).count()).unwrap_or(0);
        match fence {
            Some((c, n)) => {
                // A closing fence: the same character, at least as long, nothing after it.
                if marker == Some(c) && run >= n && trimmed[run..].trim().is_empty() && indent < 4 {
                    fence = None;
                }
                continue;
            }
            None if run >= 3 && indent < 4 => {
                let c = marker.expect("a fence has a marker");
                // A backtick fence's info string may not contain a backtick.
                if c == '~' || !trimmed[run..].contains('`') {
                    fence = Some((c, run));
                    continue;
                }
            }
            None => {}
        }
        out.push((index + 1, blank_inline_code(line)));
    }
    out
}

/// Replaces inline code spans (`` `x` ``, ``` `` x `` ```) of one line by spaces.
fn blank_inline_code(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = chars.clone();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let open = chars[i..].iter().take_while(|c| **c == '`').count();
        // Find a closing run of exactly the same length.
        let mut j = i + open;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let run = chars[j..].iter().take_while(|c| **c == '`').count();
                if run == open {
                    close = Some(j);
                    break;
                }
                j += run;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for c in &mut out[i..j + open] {
                    *c = ' ';
                }
                i = j + open;
            }
            None => i += open,
        }
    }
    out.into_iter().collect()
}

/// The links of a file: inline links and images `[text](target "title")`, and reference
/// definitions `[id]: target`.
fn links(text: &str) -> Vec<Link> {
    let mut found = Vec::new();
    for (line_number, line) in prose_lines(text) {
        // Reference definition: up to three spaces, `[label]:`, the target.
        let trimmed = line.trim_start();
        let definition = (line.len() - trimmed.len() < 4 && trimmed.starts_with('[') && !trimmed.starts_with("[^"))
            .then(|| trimmed.find("]:"))
            .flatten()
            .filter(|end| {
                let label = &trimmed[1..*end];
                !label.is_empty() && !label.contains('[') && !label.contains(']')
            });
        if let Some(end) = definition {
            let rest = trimmed[end + 2..].trim();
            let target = rest.split_whitespace().next().unwrap_or_default();
            let target = target.trim_start_matches('<').trim_end_matches('>');
            if !target.is_empty() {
                found.push(Link { line: line_number, target: target.to_owned() });
            }
            continue;
        }
        // Inline links and images: `](` then the target up to the matching `)`.
        let bytes = line.as_bytes();
        let mut i = 0;
        while let Some(at) = line[i..].find("](") {
            let start = i + at + 2;
            let mut depth = 0usize;
            let mut end = None;
            let mut k = start;
            if bytes.get(start) == Some(&b'<') {
                end = line[start..].find('>').map(|e| start + e + 1);
            } else {
                while k < bytes.len() {
                    match bytes[k] {
                        b'\\' => k += 1,
                        b'(' => depth += 1,
                        b')' if depth == 0 => {
                            end = Some(k);
                            break;
                        }
                        b')' => depth -= 1,
                        b' ' => {
                            // A title follows the target; the target ends here.
                            end = line[k..].find(')').map(|e| k + e);
                            break;
                        }
                        _ => {}
                    }
                    k += 1;
                }
            }
            let Some(end) = end else { break };
            let raw = line[start..end].trim();
            let target = raw.split_whitespace().next().unwrap_or_default();
            let target = target.trim_start_matches('<').trim_end_matches('>');
            if !target.is_empty() {
                found.push(Link { line: line_number, target: target.to_owned() });
            }
            i = end.max(start);
        }
    }
    found
}

/// Whether a link target is absolute: a URL with a scheme (`https://`, `mailto:`...).
fn is_absolute(target: &str) -> bool {
    if target.starts_with("//") {
        return true;
    }
    match target.find(':') {
        Some(colon) => {
            let scheme = &target[..colon];
            !scheme.is_empty()
                && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                && !target[..colon].contains('/')
        }
        None => false,
    }
}

/// GitHub's anchor for a heading's text: lowercase, inline markup and punctuation dropped
/// (except hyphens and underscores), spaces to hyphens.
fn slug(heading: &str) -> String {
    // Link text stands for the link: `[text](url)` becomes `text`.
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|c| open + c) else { break };
        let Some(end) = rest[close..].find(')').map(|e| close + e) else { break };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file: one per heading (ATX `#` and setext), with GitHub's `-1`,
/// `-2`... for repeated slugs, plus explicit `id="..."`/`name="..."` anchors in HTML.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    let mut add = |base: String, out: &mut Vec<String>| {
        let n = seen.entry(base.clone()).or_insert(0);
        out.push(if *n == 0 { base.clone() } else { format!("{base}-{n}") });
        *n += 1;
    };
    let lines: Vec<(usize, String)> = prose_lines_raw(text);
    for (i, (_, line)) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if line.len() - trimmed.len() < 4 && trimmed.starts_with('#') {
            let level = trimmed.chars().take_while(|c| *c == '#').count();
            let after = &trimmed[level..];
            if level <= 6 && (after.is_empty() || after.starts_with(' ') || after.starts_with('\t')) {
                // A closing sequence of `#` is not part of the heading.
                let title = after.trim().trim_end_matches('#').trim_end();
                add(slug(title), &mut out);
                continue;
            }
        }
        // Setext: a line of `=` or `-` under a paragraph line.
        if let Some((_, next)) = lines.get(i + 1) {
            let under = next.trim();
            let setext = !under.is_empty()
                && (under.chars().all(|c| c == '=') || under.chars().all(|c| c == '-'))
                && (lines[i + 1].0 == lines[i].0 + 1);
            if setext && !trimmed.is_empty() && !trimmed.starts_with('-') && !trimmed.starts_with('|') {
                add(slug(trimmed), &mut out);
            }
        }
        for attribute in ["id=\"", "name=\""] {
            let mut from = 0;
            while let Some(at) = line[from..].find(attribute) {
                let start = from + at + attribute.len();
                if let Some(len) = line[start..].find('"') {
                    out.push(line[start..start + len].to_owned());
                }
                from = start;
            }
        }
    }
    out
}

/// The lines outside fenced code blocks, inline code kept (a heading's code is its text).
fn prose_lines_raw(text: &str) -> Vec<(usize, String)> {
    let all: Vec<&str> = text.lines().collect();
    prose_lines(text).into_iter().map(|(n, _)| (n, all[n - 1].to_owned())).collect()
}

/// Decodes `%20`-style escapes of a link's path.
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII");
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes `.` and `..` without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The broken links of one Markdown file, each as `file:line: message`.
fn check_file(root: &Path, file: &Path, anchor_cache: &mut HashMap<PathBuf, Vec<String>>) -> Vec<String> {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let shown = file.strip_prefix(root).unwrap_or(file).display().to_string();
    let mut broken = Vec::new();
    for link in links(&text) {
        let target = link.target.as_str();
        if is_absolute(target) {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target, None),
        };
        let path = path.split('?').next().unwrap_or_default();
        let resolved = if path.is_empty() {
            file.to_path_buf()
        } else if let Some(from_root) = path.strip_prefix('/') {
            normalise(&root.join(percent_decode(from_root)))
        } else {
            normalise(&file.parent().expect("a file has a directory").join(percent_decode(path)))
        };
        if !resolved.exists() {
            let missing = resolved.strip_prefix(root).unwrap_or(&resolved).display().to_string();
            broken.push(format!("{shown}:{}: link to {target}: {missing} does not exist", link.line));
            continue;
        }
        if !resolved.starts_with(root) {
            broken.push(format!("{shown}:{}: link to {target} leaves the repository", link.line));
            continue;
        }
        let Some(anchor) = anchor.filter(|a| !a.is_empty()) else { continue };
        let is_markdown = resolved.extension().is_some_and(|e| e == "md");
        if !is_markdown {
            // An anchor into a source file (`#L10`) is GitHub's line link, not a heading.
            continue;
        }
        let headings = anchor_cache.entry(resolved.clone()).or_insert_with(|| {
            anchors(
                &fs::read_to_string(&resolved).unwrap_or_else(|e| panic!("cannot read {}: {e}", resolved.display())),
            )
        });
        let wanted = percent_decode(anchor).to_lowercase();
        if !headings.contains(&wanted) {
            let in_file = resolved.strip_prefix(root).unwrap_or(&resolved).display().to_string();
            broken.push(format!(
                "{shown}:{}: link to {target}: {in_file} has no heading whose anchor is #{anchor}",
                link.line
            ));
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_markdown_resolves() {
    let root = repository();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(files.iter().any(|f| f.ends_with("README.md")), "no README.md found under {}", root.display());
    let mut cache = HashMap::new();
    let broken: Vec<String> = files.iter().flat_map(|file| check_file(&root, file, &mut cache)).collect();
    assert!(broken.is_empty(), "{} broken link(s) in the Markdown:\n  {}", broken.len(), broken.join("\n  "));
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("Availability objective (SLO)"), "availability-objective-slo");
    assert_eq!(slug("Availability objective (`SLO_POLICY`)"), "availability-objective-slo_policy");
    assert_eq!(
        slug("The runbook's commands, and what does them here"),
        "the-runbooks-commands-and-what-does-them-here"
    );
    assert_eq!(
        slug("Check the environment before a deploy (`check-env`)"),
        "check-the-environment-before-a-deploy-check-env"
    );
    assert_eq!(slug("Stop and resume writes (`dr freeze`, `dr thaw`)"), "stop-and-resume-writes-dr-freeze-dr-thaw");
    assert_eq!(slug("See [the docs](docs/x.md) now"), "see-the-docs-now");
}

#[test]
fn links_in_code_are_not_links_and_the_rest_are_found() {
    let text = "# Title\n\
                [a](one.md) and `[b](two.md)` and ``[c](three.md)``\n\
                ```md\n[d](four.md)\n```\n\
                ~~~\n[e](five.md)\n~~~\n\
                ![img](pic.png \"title\") [f](six.md#part)\n\
                [ref]: seven.md\n\
                [g](https://example.com) [h](mailto:ops@example.com) [i](#title)\n";
    let targets: Vec<(usize, String)> = links(text).into_iter().map(|l| (l.line, l.target)).collect();
    let expected: Vec<(usize, String)> = [
        (2, "one.md"),
        (9, "pic.png"),
        (9, "six.md#part"),
        (10, "seven.md"),
        (11, "https://example.com"),
        (11, "mailto:ops@example.com"),
        (11, "#title"),
    ]
    .into_iter()
    .map(|(n, t)| (n, t.to_owned()))
    .collect();
    assert_eq!(targets, expected);
    assert!(is_absolute("https://example.com") && is_absolute("mailto:ops@example.com"));
    assert!(!is_absolute("docs/x.md") && !is_absolute("#anchor") && !is_absolute("x.md#a:b"));
}

#[test]
fn repeated_headings_get_numbered_anchors() {
    let text = "# A\n## Notes\n```\n# not a heading\n```\n## Notes\nSetext\n---\n";
    assert_eq!(anchors(text), ["a", "notes", "notes-1", "setext"]);
}
