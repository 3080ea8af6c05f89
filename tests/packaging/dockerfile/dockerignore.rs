//! The `.dockerignore`: a matcher following Docker's rules, and nothing the Dockerfile copies
//! excluded.

use super::*;

/// Docker's rules: the last matching pattern wins, `!` re-includes, a pattern matching a parent
/// directory matches everything below it; `*` and `?` stay within a path segment, `**` spans any
/// number of segments.
struct DockerIgnore {
    patterns: Vec<(bool, Vec<String>)>,
}

impl DockerIgnore {
    fn read() -> DockerIgnore {
        let patterns = read(".dockerignore")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (negated, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                assert!(
                    !pattern.contains(['[', '\\']),
                    ".dockerignore pattern `{pattern}`: this reader knows only *, ? and **"
                );
                let segments = pattern
                    .trim_start_matches('/')
                    .trim_end_matches('/')
                    .split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .map(str::to_owned)
                    .collect();
                (negated, segments)
            })
            .collect();
        DockerIgnore { patterns }
    }

    fn excludes(&self, path: &str) -> bool {
        let segments: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for (negated, pattern) in &self.patterns {
            let pattern: Vec<&str> = pattern.iter().map(String::as_str).collect();
            if (1..=segments.len()).any(|n| glob(&pattern, &segments[..n])) {
                excluded = !negated;
            }
        }
        excluded
    }
}

fn glob(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            glob(&pattern[1..], path) || (!path.is_empty() && glob(pattern, &path[1..]))
        }
        (Some(p), Some(s)) => {
            segment(p.as_bytes(), s.as_bytes()) && glob(&pattern[1..], &path[1..])
        }
        _ => false,
    }
}

fn segment(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            segment(&pattern[1..], text) || (!text.is_empty() && segment(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => segment(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) => p == t && segment(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// Every file under `relative` (itself if a file), as `/`-separated paths from the crate root.
fn files_under(relative: &str) -> Vec<String> {
    let path = Path::new(ROOT).join(relative);
    if path.is_file() {
        return vec![relative.to_owned()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        let name = entry.expect("a directory entry").file_name();
        files.extend(files_under(&format!(
            "{relative}/{}",
            name.to_string_lossy()
        )));
    }
    files
}

#[test]
fn dockerignore_excludes_target_and_keeps_every_build_input() {
    let ignore = DockerIgnore::read();
    for path in ["target", "target/release/switchyard", ".git", ".git/HEAD"] {
        assert!(
            ignore.excludes(path),
            ".dockerignore does not exclude {path}"
        );
    }
    let stages = dockerfile();
    let mut checked = 0;
    for stage in &stages {
        for (_, source) in context_copies(stage) {
            if source == "." {
                continue;
            }
            for file in files_under(&source) {
                assert!(
                    !ignore.excludes(&file),
                    ".dockerignore excludes {file}, which the Dockerfile copies"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 0,
        "no build inputs found to check against .dockerignore"
    );
}

#[test]
fn the_dockerignore_matcher_follows_docker_rules() {
    let ignore = DockerIgnore {
        patterns: vec![
            (false, vec!["docs".to_owned()]),
            (false, vec!["**".to_owned(), "*.swp".to_owned()]),
            (true, vec!["docs".to_owned(), "keep.md".to_owned()]),
            (false, vec!["a?c".to_owned()]),
        ],
    };
    assert!(ignore.excludes("docs/x.png"));
    assert!(!ignore.excludes("docs/keep.md"));
    assert!(ignore.excludes("src/deep/file.swp"));
    assert!(ignore.excludes("abc/x"));
    assert!(!ignore.excludes("abbc"));
    assert!(!ignore.excludes("src/main.rs"));
}
