//! The README's flag, metric, attribute and self-metric references are generated from the code; this test fails when
//! they disagree. `UPDATE_README=1 cargo test --test readme` rewrites them in place.

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
        (
            "self-metrics",
            container_exporter::telemetry::markdown_table(),
        ),
        (
            "cadvisor",
            container_exporter::metrics::cadvisor_markdown_table(),
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
