//! The README's flag, metric, attribute and self-metric references are generated from the
//! code; this test fails when they disagree. `UPDATE_README=1 cargo test --test readme`
//! rewrites them in place. The figures the README opens with are checked against its
//! Performance tables, which they quote.

use std::fs;
use std::path::Path;

fn section(readme: &str, name: &str) -> Option<(usize, usize)> {
    let begin =
        format!("<!-- BEGIN {name} (generated: UPDATE_README=1 cargo test --test readme) -->\n");
    let end = format!("<!-- END {name} -->");
    let start = readme.find(&begin)? + begin.len();
    let stop = start + readme[start..].find(&end)?;
    Some((start, stop))
}

#[test]
fn readme_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let mut readme = fs::read_to_string(&path).expect("README.md");
    let generated = [
        ("flags", container_exporter::config::flags_markdown()),
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
    ];
    let update = std::env::var_os("UPDATE_README").is_some();
    let mut stale = Vec::new();
    for (name, text) in &generated {
        let (start, stop) = section(&readme, name)
            .unwrap_or_else(|| panic!("README.md has no generated `{name}` section"));
        if readme[start..stop] != **text {
            stale.push(*name);
            if update {
                readme.replace_range(start..stop, text);
            }
        }
    }
    if update {
        fs::write(&path, &readme).unwrap();
    } else {
        assert!(
            stale.is_empty(),
            "README.md's {stale:?} reference differs from the code: run \
             `UPDATE_README=1 cargo test --test readme` and review the diff"
        );
    }
}

/// The cells of the table row that starts with `first` (a row's first cell, as written).
fn row<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    let line = text
        .lines()
        .find(|l| l.starts_with(first))
        .unwrap_or_else(|| panic!("README.md's Performance section has no row {first:?}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

/// The figures the README opens with are those of its Performance tables: the side-by-side
/// row for 100 Docker containers at 1 s (ratio to the floor, µs per container) and the scale
/// table's share of a core at 1,000 containers, each with the script that measured it.
#[test]
fn opening_figures_are_those_of_the_performance_tables() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = fs::read_to_string(&path).expect("README.md");
    let start = readme
        .find("\n## Performance\n")
        .expect("a Performance section");
    let perf = &readme[start + 1..];
    let perf = &perf[..perf[1..].find("\n## ").map_or(perf.len(), |i| i + 1)];

    let side = row(perf, "| 100 Docker containers, 1 s |");
    let per_container = side[1]
        .rsplit(", ")
        .next()
        .expect("the daemon's cell: `<ms per tick>, <µs per container>`");
    let ratio = side[3].split_whitespace().next().expect("a ratio");
    let header = row(perf, "| | 1,000 containers |");
    assert_eq!(header[1], "1,000 containers");
    let share = row(perf, "| share of one core |")[1];

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
            "README.md's opening does not say {want:?} as its Performance tables do: {cheap}"
        );
    }
}
