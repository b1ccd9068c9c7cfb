//! The documentation (`README.md` and `docs/*.md`) stays true to the code and to itself:
//!
//! - the flag, metric, attribute, self-metric and cAdvisor references are generated from the
//!   code's tables, between `<!-- BEGIN name (generated: …) -->` and `<!-- END name -->`, in
//!   whichever file holds them; this test fails when one differs, and
//!   `UPDATE_README=1 cargo test --test readme` rewrites them all in place;
//! - the figures the README opens with are those of `docs/performance.md`'s tables;
//! - every relative link leads to a file that exists, and its `#anchor` to a heading there;
//! - every repository path named in backquotes (`src/…`, `tests/…`, …) exists.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// What follows a section's name in its BEGIN marker.
const GENERATED: &str = " (generated: UPDATE_README=1 cargo test --test readme) -->\n";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `README.md` and every `docs/*.md`, as paths relative to the crate root.
fn documents() -> Vec<String> {
    let mut out = vec!["README.md".to_string()];
    let mut docs: Vec<String> = fs::read_dir(root().join("docs"))
        .expect("a docs/ directory")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

fn read(path: &str) -> String {
    fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The generated sections of `text`: name and the byte range between the markers.
fn sections(text: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("<!-- BEGIN ") {
        let name_start = from + at + "<!-- BEGIN ".len();
        let Some(name_len) = text[name_start..].find(GENERATED) else {
            from = name_start;
            continue;
        };
        let name = &text[name_start..name_start + name_len];
        let start = name_start + name_len + GENERATED.len();
        let end = format!("<!-- END {name} -->");
        let stop = start
            + text[start..]
                .find(&end)
                .unwrap_or_else(|| panic!("the generated `{name}` section has no `{end}`"));
        out.push((name.to_string(), start, stop));
        from = stop;
    }
    out
}

#[test]
fn generated_sections_match_the_code() {
    let generated: BTreeMap<&str, String> = [
        ("flags", container_exporter::cli::flags_markdown()),
        ("metrics", container_exporter::metrics::markdown_table()),
        ("attributes", container_exporter::resource::markdown_table()),
        (
            "self-metrics",
            container_exporter::telemetry::markdown_table(),
        ),
        (
            "cadvisor",
            container_exporter::export::cadvisor::cadvisor_markdown_table(),
        ),
    ]
    .into_iter()
    .collect();
    let update = std::env::var_os("UPDATE_README").is_some();
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut stale = Vec::new();
    for path in documents() {
        let mut text = read(&path);
        let mut changed = false;
        // From the last section back, so that rewriting one leaves the others' ranges valid.
        for (name, start, stop) in sections(&text).into_iter().rev() {
            found.entry(name.clone()).or_default().push(path.clone());
            let want = generated.get(name.as_str()).unwrap_or_else(|| {
                panic!(
                    "{path} has a generated section `{name}` that no code generates \
                     (known: {:?})",
                    generated.keys().collect::<Vec<_>>()
                )
            });
            if text[start..stop] != **want {
                stale.push(format!("{path}: `{name}`"));
                if update {
                    text.replace_range(start..stop, want);
                    changed = true;
                }
            }
        }
        if changed {
            fs::write(root().join(&path), &text).unwrap();
        }
    }
    for name in generated.keys() {
        match found.get(*name).map(Vec::as_slice) {
            Some([_]) => {}
            Some(files) => {
                panic!("the generated `{name}` section is there more than once: {files:?}")
            }
            None => panic!(
                "no file of README.md and docs/ has the generated `{name}` section: put \
                 `<!-- BEGIN {name}{}<!-- END {name} -->` where it belongs and run \
                 `UPDATE_README=1 cargo test --test readme`",
                GENERATED.trim_end()
            ),
        }
    }
    assert!(
        update || stale.is_empty(),
        "generated references differ from the code: {stale:?}; run \
         `UPDATE_README=1 cargo test --test readme` and review the diff"
    );
}

/// The cells of the table row of `text` that starts with `first` (a row's first cell, as
/// written).
fn row<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    let line = text
        .lines()
        .find(|l| l.starts_with(first))
        .unwrap_or_else(|| panic!("docs/performance.md has no table row {first:?}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

/// The figures the README opens with are those of `docs/performance.md`'s tables: the
/// side-by-side row for 100 Docker containers at 1 s (ratio to the floor, µs per container) and
/// the scale table's share of a core at 1,000 containers, each with the script that measured it.
#[test]
fn opening_figures_are_those_of_the_performance_tables() {
    let readme = read("README.md");
    let perf = read("docs/performance.md");

    let side = row(&perf, "| 100 Docker containers, 1 s |");
    let per_container = side[1]
        .rsplit(", ")
        .next()
        .expect("the daemon's cell: `<ms per tick>, <µs per container>`");
    let ratio = side[3].split_whitespace().next().expect("a ratio");
    let header = row(&perf, "| | 1,000 containers |");
    assert_eq!(header[1], "1,000 containers");
    let share = row(&perf, "| share of one core |")[1];

    let cheap = readme
        .split("\n- **Cheap.**")
        .nth(1)
        .and_then(|rest| rest.split("\n- **").next())
        .expect("the opening's **Cheap.** point");
    let cheap = cheap.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        format!("{ratio} × that floor, {per_container} per container"),
        format!("{share} of a core"),
        "`benches/side-by-side.sh`".to_string(),
        "`benches/scale.sh`".to_string(),
    ] {
        assert!(
            cheap.contains(&want),
            "README.md's opening does not say {want:?} as docs/performance.md's tables do: \
             {cheap}"
        );
    }
}

/// The lines of a Markdown text outside fenced code blocks, with their numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// The inline code spans of a line (between single backquotes).
fn code_spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// `line` with its inline code spans blanked.
fn without_code(line: &str) -> String {
    line.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                " ".repeat(part.len())
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The anchor GitHub gives a heading: lower case, letters, digits, `-` and `_` kept, spaces to
/// `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown text's headings (a repeated one gets `-1`, `-2`, … as on GitHub).
fn anchors(text: &str) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (_, line) in prose(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let n = seen.entry(base.clone()).or_insert(0);
        out.push(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of a line's Markdown links (`[text](target)`, and `[label]: target`).
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code(line);
    let mut out = Vec::new();
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after.find(')').unwrap_or(after.len());
        out.push(after[..end].trim().to_string());
        rest = &after[end..];
    }
    let trimmed = line.trim_start();
    if trimmed.starts_with('[')
        && let Some(at) = trimmed.find("]: ")
    {
        out.push(trimmed[at + 3..].trim().to_string());
    }
    out
}

#[test]
fn every_relative_link_leads_somewhere() {
    let mut broken = Vec::new();
    for path in documents() {
        let text = read(&path);
        let dir = Path::new(&path).parent().unwrap_or(Path::new(""));
        for (n, line) in prose(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
                let linked: PathBuf = if file.is_empty() {
                    PathBuf::from(&path)
                } else {
                    normalize(&dir.join(file))
                };
                if !root().join(&linked).exists() {
                    broken.push(format!(
                        "{path}:{n}: `{target}`: there is no {}",
                        linked.display()
                    ));
                    continue;
                }
                if anchor.is_empty() || linked.extension().is_none_or(|e| e != "md") {
                    continue;
                }
                let linked = linked.to_string_lossy().into_owned();
                if !anchors(&read(&linked)).iter().any(|a| a == anchor) {
                    broken.push(format!(
                        "{path}:{n}: `{target}`: {linked} has no heading whose anchor is \
                         `#{anchor}`"
                    ));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links that lead nowhere:\n{}",
        broken.join("\n")
    );
}

/// `a/b/../c` as `a/c` (the file need not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Where the repository's own files are; a path in backquotes that starts with one of these
/// names a file of the repository.
const REPOSITORY_DIRS: [&str; 6] = ["src/", "tests/", "benches/", "deploy/", ".ci/", "testdata/"];

#[test]
fn every_repository_path_named_exists() {
    let mut missing = Vec::new();
    for path in documents() {
        let text = read(&path);
        for (n, line) in prose(&text) {
            for span in code_spans(line) {
                let Some(named) = span.split_whitespace().next() else {
                    continue;
                };
                let named = named.trim_end_matches([',', ':', ';', ')']);
                let pattern = named.contains(['<', '*', '…', '{', '$']);
                if pattern || !REPOSITORY_DIRS.iter().any(|d| named.starts_with(d)) {
                    continue;
                }
                if !root().join(named).exists() {
                    missing.push(format!("{path}:{n}: `{named}` does not exist"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths the documentation names that are not in the repository (moved? say where \
         they are now):\n{}",
        missing.join("\n")
    );
}

#[test]
fn anchors_and_links_are_read_as_github_reads_them() {
    assert_eq!(slug(" Disk usage next to `du`"), "disk-usage-next-to-du");
    assert_eq!(
        slug(" At scale: 1,000 and 5,000 containers"),
        "at-scale-1000-and-5000-containers"
    );
    assert_eq!(
        slug(" Compose: a collector, Prometheus and Grafana"),
        "compose-a-collector-prometheus-and-grafana"
    );
    assert_eq!(
        anchors("# A\n## Flags\n```\n# not a heading\n```\n## Flags\n#no"),
        ["a", "flags", "flags-1"]
    );
    assert_eq!(
        link_targets("see [`x`](docs/a.md#b) and [c](https://e.org) `[d](not/a/link)`"),
        ["docs/a.md#b", "https://e.org"]
    );
    assert_eq!(
        normalize(Path::new("docs/../deploy/./grafana/")),
        Path::new("deploy/grafana")
    );
    let text = format!("a\n<!-- BEGIN x{GENERATED}old\n<!-- END x -->\nb");
    let found = sections(&text);
    assert_eq!(found.len(), 1);
    assert_eq!(&text[found[0].1..found[0].2], "old\n");
}
