//! The test's harness side: which exporter goes into the VM (the static build, or a stand-in
//! said loudly), which runtimes, and how what is left untested is reported.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Says loudly that something was not tested: a banner on stderr, and a line appended to the
/// file `CE_SKIP_REPORT` names, which CI prints as its closing summary.
pub(crate) fn not_tested(what: &str) {
    let line = format!("NOT TESTED: {what}");
    let bar = "!".repeat(line.len().min(100));
    eprintln!("\n{bar}\n{line}\n{bar}\n");
    if let Some(path) = std::env::var_os("CE_SKIP_REPORT").filter(|p| !p.is_empty()) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "tests/vm_cgroup2.rs: {line}"));
        if let Err(e) = appended {
            eprintln!(
                "cannot append to CE_SKIP_REPORT={}: {e}",
                path.to_string_lossy()
            );
        }
    }
}

/// The runtimes CE_VM_RUNTIMES puts in the guest (containerd implies runc, as in run-vm.sh).
pub(crate) fn runtimes_wanted() -> Vec<&'static str> {
    let v = std::env::var("CE_VM_RUNTIMES").unwrap_or_else(|_| "runc containerd".into());
    let words: Vec<&str> = v.split_whitespace().collect();
    match (words.contains(&"containerd"), words.contains(&"runc")) {
        _ if words == ["none"] || words.is_empty() => vec![],
        (true, _) => vec!["runc", "containerd"],
        (false, true) => vec!["runc"],
        _ => panic!("CE_VM_RUNTIMES={v:?}: runc, containerd or none"),
    }
}

/// `<target dir>`, from this test binary's path: `<target>/<profile>/deps/vm_cgroup2-…`.
pub(crate) fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The exporter to run in the guest, and, when it is a stand-in, what the result cannot say.
pub(crate) fn exporter_binary() -> (PathBuf, Option<String>) {
    if let Some(p) = std::env::var_os("CE_VM_EXPORTER") {
        let what = format!(
            "the exporter — CE_VM_EXPORTER={} stand-in used: every check of this test is of \
             the stand-in, not of container-exporter",
            p.to_string_lossy()
        );
        if std::env::var("CE_VM_ALLOW_STANDIN").as_deref() != Ok("1") {
            eprintln!("\nNOT TESTED: {what}\n");
            panic!(
                "CE_VM_EXPORTER={} replaces container-exporter with a stand-in, so this test \
                 would not test the exporter. Set CE_VM_ALLOW_STANDIN=1 as well to run the \
                 harness with it anyway (the result then says NOT TESTED), or unset \
                 CE_VM_EXPORTER.",
                p.to_string_lossy()
            );
        }
        not_tested(&what);
        return (PathBuf::from(p), Some(what));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = target_dir().join("vm-static");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let triple = "x86_64-unknown-linux-gnu";
    eprintln!(
        "building a static container-exporter into {}",
        dir.display()
    );
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--bin",
            "container-exporter",
            "--target",
            triple,
        ])
        .env("CARGO_TARGET_DIR", &dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "static build of container-exporter failed"
    );
    (
        dir.join(triple).join("release").join("container-exporter"),
        None,
    )
}
