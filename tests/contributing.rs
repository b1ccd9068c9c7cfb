//! `docs/contributing.md` stays true to the code:
//!
//! - every worked example's snippet (a diff under "In `path`:") is in the named file, its
//!   fragments in order, white space aside;
//! - every recipe lists files that exist (a `<name>` part stands for a file to create: its
//!   directory must exist), as many as its count says;
//! - what the recipes promise holds, on the fixtures of `testdata/`: a flag reaches the code
//!   that reads it, a metric's row and arm show a field of the sample, a new cgroup file is read
//!   through its plan row alone, a limit file's row alone makes it read, kept and refreshed, a
//!   self-metric's row reads its counter, a runtime's path and registry row name its
//!   containers, and every file of the plan is in the fuzz targets' list.

#[path = "fuzz/targets.rs"]
mod targets;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use container_exporter::cgroup::plan::{self, Layouts};
use container_exporter::cgroup::sample::Limit;
use container_exporter::cgroup::{
    CgroupReader, CgroupSample, Layout, LayoutKind, NetSource, OpenOptions, ProcRoot,
};
use container_exporter::cli::Cli;
use container_exporter::discovery::{self, Kind, Runtime, classify};
use container_exporter::metadata::{ContainerMeta, Metadata, Source};
use container_exporter::metrics::{self, Context, Metric, Sink, Value};
use container_exporter::telemetry::{self, ProcessStats, SELF_METRICS, Telemetry};

const GUIDE: &str = "docs/contributing.md";

/// The recipes the guide must have, each with its list of files and a worked example.
const RECIPES: [&str; 7] = [
    "Add a flag",
    "Add a metric from a field the sample already has",
    "Add a metric from a new cgroup file",
    "Add a limit file",
    "Add a self-metric",
    "Add a resource attribute",
    "Add a runtime",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn testdata(rel: &str) -> Vec<u8> {
    let path = root().join("testdata").join(rel);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// White space collapsed to single spaces.
fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A `## ` section of the guide: its title, the line number of its first line, its lines.
struct Section<'a> {
    title: String,
    first: usize,
    lines: Vec<&'a str>,
}

fn sections(text: &str) -> Vec<Section<'_>> {
    let mut out: Vec<Section<'_>> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match line.strip_prefix("## ") {
            Some(title) => out.push(Section {
                title: title.trim().to_string(),
                first: n + 2,
                lines: Vec::new(),
            }),
            None => {
                if let Some(s) = out.last_mut() {
                    s.lines.push(line);
                }
            }
        }
    }
    out
}

/// A worked example's snippet: the file it is from, its fragments (split at `@@` lines, diff
/// markers removed) and whether it has a `+` line.
struct Snippet {
    file: String,
    fragments: Vec<String>,
    added: bool,
    line: usize,
}

/// The snippets of a section's lines (`first` is the guide's line number of `lines[0]`).
fn snippets(lines: &[&str], first: usize) -> Vec<Snippet> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_start() != "```diff" {
            i += 1;
            continue;
        }
        let named = lines[..i].iter().rev().find(|l| !l.trim().is_empty());
        let file = named
            .and_then(|l| l.strip_prefix("In `"))
            .and_then(|l| l.strip_suffix("`:"))
            .unwrap_or_else(|| {
                panic!(
                    "{GUIDE}:{}: a snippet not preceded by \"In `path`:\"",
                    first + i
                )
            });
        let (mut fragments, mut current, mut added) = (Vec::new(), Vec::new(), false);
        let start = i;
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            let line = lines[i];
            if line.starts_with("@@") {
                fragments.push(std::mem::take(&mut current).join("\n"));
            } else if let Some(code) = line.strip_prefix('+') {
                added = true;
                current.push(code);
            } else if let Some(code) = line.strip_prefix(' ') {
                current.push(code);
            } else if !line.is_empty() {
                panic!(
                    "{GUIDE}:{}: a snippet line that is neither ` ` nor `+`: {line:?}",
                    first + i
                );
            }
            i += 1;
        }
        fragments.push(current.join("\n"));
        out.push(Snippet {
            file: file.to_string(),
            fragments: fragments.iter().map(|f| normalise(f)).collect(),
            added,
            line: first + start,
        });
        i += 1;
    }
    out
}

/// A list under a line that starts with `header` and says its length, `Files touched (4):`:
/// the count and the first backquoted span of each numbered item.
fn listed(lines: &[&str], header: &str) -> Option<(usize, Vec<String>)> {
    let at = lines.iter().position(|l| l.starts_with(header))?;
    let count = lines[at]
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("{GUIDE}: `{}` says no count", lines[at]));
    let items = lines[at + 1..]
        .iter()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| {
            l.split_once(". ")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        })
        .map(|l| {
            l.split('`')
                .nth(1)
                .unwrap_or_else(|| panic!("{GUIDE}: a listed item that names no file: {l}"))
                .to_string()
        })
        .collect();
    Some((count, items))
}

#[test]
fn every_snippet_of_the_guide_is_in_the_file_it_names() {
    let guide = read(GUIDE);
    let mut wrong = Vec::new();
    let mut examples = Vec::new();
    for Section {
        title,
        first,
        lines,
    } in sections(&guide)
    {
        let found = snippets(&lines, first);
        if !found.is_empty() {
            examples.push(title.clone());
        }
        for s in found {
            if !s.added {
                wrong.push(format!("{GUIDE}:{}: a snippet with no `+` line", s.line));
            }
            let code = normalise(&read(&s.file));
            let mut from = 0;
            for fragment in &s.fragments {
                match code[from..].find(fragment.as_str()) {
                    Some(at) => from += at + fragment.len(),
                    None => wrong.push(format!(
                        "{GUIDE}:{} ({title}): not in {} (after what came before): {fragment}",
                        s.line, s.file
                    )),
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the guide's worked examples differ from the code; show the code as it is now:\n{}",
        wrong.join("\n")
    );
    for recipe in RECIPES {
        assert!(
            examples.iter().any(|e| e == recipe),
            "`## {recipe}` has no worked example"
        );
    }
}

#[test]
fn every_recipe_lists_files_that_exist_as_many_as_it_says() {
    let guide = read(GUIDE);
    let sections = sections(&guide);
    let mut wrong = Vec::new();
    for recipe in RECIPES {
        let lines = &sections
            .iter()
            .find(|s| s.title == recipe)
            .unwrap_or_else(|| panic!("{GUIDE} has no `## {recipe}`"))
            .lines;
        let files = listed(lines, "Files touched (");
        let tests = listed(lines, "Tests (").or_else(|| listed(lines, "Tests and fixtures ("));
        let (Some(files), Some(tests)) = (files, tests) else {
            wrong.push(format!(
                "{recipe}: no `Files touched (n):` or no `Tests (n):` list"
            ));
            continue;
        };
        for (what, (count, items)) in [("files touched", files), ("tests", tests)] {
            if items.len() != count {
                wrong.push(format!(
                    "{recipe}: {count} {what} said, {} listed: {items:?}",
                    items.len()
                ));
            }
            for item in items {
                // `src/metadata/<runtime>.rs`: a file to create, in a directory that exists.
                let path = match item.split_once('<') {
                    Some((dir, _)) => dir,
                    None => &item,
                };
                if path.is_empty() || !root().join(path).exists() {
                    wrong.push(format!("{recipe}: `{item}` does not exist"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The points `emit` gives, by metric.
#[derive(Default)]
struct Points(Vec<(Metric, Vec<String>, Value)>);

impl Sink for Points {
    fn point(&mut self, metric: Metric, attrs: &[&str], value: Value) {
        let attrs = attrs.iter().map(|a| a.to_string()).collect();
        self.0.push((metric, attrs, value));
    }
}

fn emitted(s: &CgroupSample, metric: Metric) -> Vec<Value> {
    let ctx = Context {
        previous_cpu: None,
        uptime: None,
        disk: None,
        exit: None,
    };
    let mut points = Points::default();
    metrics::emit(s, &ctx, &mut points);
    points
        .0
        .into_iter()
        .filter(|(m, _, _)| *m == metric)
        .map(|(_, _, v)| v)
        .collect()
}

/// The value of `key` in a flat keyed file.
fn key(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in the fixture"))
}

#[test]
fn a_flag_reaches_the_code_that_reads_it() {
    let parse = |value: &str| {
        Cli::try_parse_from(["container-exporter", "--podman-host", value])
            .unwrap_or_else(|e| panic!("--podman-host {value}: {e}"))
    };
    let endpoint = Source::Podman.def().endpoint;
    let off = parse("off");
    assert_eq!(
        off.daemon.metadata.endpoints.podman_host.as_deref(),
        Some("off")
    );
    assert_eq!(endpoint(&off.daemon.metadata, &off.host), None);
    let elsewhere = parse("unix:///run/elsewhere/podman.sock");
    assert_eq!(
        endpoint(&elsewhere.daemon.metadata, &elsewhere.host).as_deref(),
        Some("unix:///run/elsewhere/podman.sock")
    );
}

#[test]
fn a_metric_row_and_its_arm_show_a_field_of_the_sample() {
    let stat = testdata("linux-6.1-cgroup-v2/memory.stat");
    let mut s = CgroupSample::default();
    let problems = plan::parse_files(false, &[("memory.stat", &stat)], &mut s);
    assert!(problems.is_empty(), "{problems:?}");
    let file = key(&String::from_utf8_lossy(&stat), "file");
    assert_eq!(s.memory.file, Some(file));
    assert_eq!(emitted(&s, Metric::MemoryFile), [Value::Int(file)]);
    assert_eq!(Metric::MemoryFile.def().name, "container.memory.file");
}

#[test]
fn a_new_cgroup_file_is_read_through_its_plan_row() {
    let name = "memory.swap.current";
    assert!(
        plan::files(LayoutKind::V2).any(|f| f.name == name),
        "no v2 row for {name}"
    );
    let bytes = testdata(&format!("linux-6.1-cgroup-v2/{name}"));
    let written: u64 = String::from_utf8_lossy(&bytes).trim().parse().unwrap();
    let mut s = CgroupSample::default();
    let problems = plan::parse_files(false, &[(name, &bytes)], &mut s);
    assert!(problems.is_empty(), "{problems:?}");
    // A zero the kernel wrote is a point: absent would be no point at all.
    assert_eq!(s.memory.swap, Some(written));
    assert_eq!(emitted(&s, Metric::MemorySwap), [Value::Int(written)]);
    let empty = CgroupSample::default();
    assert!(emitted(&empty, Metric::MemorySwap).is_empty());
}

/// A cgroup-shaped directory under the temporary directory, removed when dropped.
struct TempCgroup {
    mount: PathBuf,
}

impl TempCgroup {
    fn new(name: &str) -> TempCgroup {
        let mount =
            std::env::temp_dir().join(format!("ce-contributing-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&mount);
        fs::create_dir_all(mount.join("ctr")).unwrap();
        TempCgroup { mount }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.mount.join("ctr").join(name)
    }
}

impl Drop for TempCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.mount);
    }
}

/// The worked example of "Add a limit file": a reader given only the plan's `memory.swap.max`
/// row, over a copy of real kernel files, reads it, keeps it through reads that skip it while
/// the file changes, and reads it again when asked to refresh its limits. No code of the test
/// knows the file but the row it takes from the plan.
#[test]
fn a_limit_row_alone_makes_its_file_read_kept_and_refreshed() {
    let row = plan::PLAN
        .iter()
        .position(|f| f.name == "memory.swap.max" && f.layouts == Layouts::V2)
        .expect("the plan's v2 memory.swap.max row");
    let only_that_row = std::slice::from_ref(&plan::PLAN[row]);
    let limited = testdata("linux-6.1-cgroup-v2/spec/memory.swap.max");
    let unlimited = testdata("linux-6.1-cgroup-v2/spec/unlimited/memory.swap.max");
    let value: u64 = String::from_utf8_lossy(&limited).trim().parse().unwrap();

    let cg = TempCgroup::new("limit");
    let file = cg.file("memory.swap.max");
    fs::write(&file, &limited).unwrap();
    let layout = Layout {
        kind: LayoutKind::V2,
        unified: Some(cg.mount.clone()),
        cpu: None,
        cpuacct: None,
        memory: None,
        blkio: None,
        pids: None,
        systemd: None,
    };
    let options = OpenOptions {
        limits_every: Duration::from_secs(36_000),
        plan: only_that_row,
        ..OpenOptions::default()
    };
    let mut reader = CgroupReader::open_with(&layout, Path::new("ctr"), options)
        .expect("open the copy")
        .with_net_source(NetSource::Skip);
    let proc_root = ProcRoot::new(Path::new("/proc"));
    let (mut buf, mut sample) = (Vec::new(), CgroupSample::default());
    let mut read = |r: &mut CgroupReader| {
        r.read(&proc_root, &mut buf, &mut sample, &mut |e| panic!("{e}"))
            .expect("the copy is there");
        sample.spec.memory_swap_limit
    };

    assert_eq!(read(&mut reader), Some(Limit::Value(value)), "read");
    fs::write(&file, &unlimited).unwrap();
    assert_eq!(
        read(&mut reader),
        Some(Limit::Unlimited),
        "a new container's limits are read at every read"
    );
    // Past its first seconds (the bound the reader promises), a container younger than the
    // limits period trusts its limits for as long as it has existed: at least these seconds.
    std::thread::sleep(discovery::RETRY_AFTER_DISCOVERY);
    assert_eq!(read(&mut reader), Some(Limit::Unlimited));

    fs::write(&file, &limited).unwrap();
    for _ in 0..3 {
        assert_eq!(
            read(&mut reader),
            Some(Limit::Unlimited),
            "kept from its last read by reads that skip it (each sample starts empty)"
        );
    }
    reader.refresh_limits();
    assert_eq!(
        read(&mut reader),
        Some(Limit::Value(value)),
        "read again when asked to"
    );
    assert_eq!(
        read(&mut reader),
        Some(Limit::Value(value)),
        "and kept again"
    );
}

#[test]
fn a_self_metric_row_reads_its_counter() {
    let t = Telemetry::default();
    telemetry::set(&t.scrapes, 7);
    let row = SELF_METRICS
        .iter()
        .find(|m| m.name == "container_exporter.scrapes")
        .expect("the scrapes row");
    let mut points = Vec::new();
    (row.emit)(&t, &ProcessStats::default(), &mut |attr, v| {
        points.push((attr, v))
    });
    assert_eq!(points, [(None, Value::Int(7))]);
    assert_eq!(row.prometheus_name(), "container_exporter_scrapes_total");
}

#[test]
fn a_runtime_is_found_by_its_path_and_named_by_its_row() {
    let id = "12a2c03ea2158182a1d6ebc6ebaf06c728ed3cf3d191793bde6eb2bc9f629dc1";
    let found = classify(Path::new(&format!("machine.slice/libpod-{id}.scope")))
        .expect("a Podman container");
    assert_eq!(
        (found.kind, found.runtime, found.id.as_str()),
        (Kind::Container, Runtime::Podman, id)
    );
    assert_eq!(found.runtime.as_str(), "podman");

    let row = Source::Podman.def();
    assert_eq!(row.name, "podman");
    assert!(row.first_for.contains(&Runtime::Podman));
    // The same id known to Docker's source and to Podman's: Podman's row names it first.
    let metadata = Metadata::default();
    let named = |name: &str| ContainerMeta {
        name: Some(name.into()),
        ..ContainerMeta::default()
    };
    metadata.store(Source::Docker).insert(id.into(), named("d"));
    metadata.store(Source::Podman).insert(id.into(), named("p"));
    let name = |r| metadata.container(r, id).and_then(|m| m.name.clone());
    assert_eq!(name(Runtime::Podman).as_deref(), Some("p"));
    assert_eq!(name(Runtime::Docker).as_deref(), Some("d"));
}

/// "Add a metric from a new cgroup file" and "Add a limit file" ask for the file's name in the
/// fuzz targets' list: every file of the plan is there.
#[test]
fn every_file_of_the_plan_is_in_the_fuzz_targets_list() {
    let missing: Vec<&str> = plan::PLAN
        .iter()
        .map(|f| f.name)
        .filter(|name| !targets::FILES.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "files of the plan missing from `FILES` in tests/fuzz/targets.rs: {missing:?}"
    );
}
