//! The README's cAdvisor page reference, generated from the table.

use crate::cgroup::sample::CgroupSample;

use super::family::{CadvisorFamily, Conv, Label, Select};
use super::table::{CADVISOR, CADVISOR_MACHINE};

/// The README's cAdvisor page reference, generated from [`CADVISOR`] and
/// [`CADVISOR_MACHINE`].
pub fn cadvisor_markdown_table() -> String {
    let mut out =
        String::from("| family | type | labels besides the identity | from |\n|---|---|---|---|\n");
    let mut i = 0;
    while i < CADVISOR.len() {
        let f = &CADVISOR[i];
        let rows: Vec<&CadvisorFamily> = CADVISOR[i..]
            .iter()
            .take_while(|r| r.name == f.name)
            .collect();
        i += rows.len();
        let mut labels: Vec<String> = Vec::new();
        let mut from: Vec<String> = Vec::new();
        for r in &rows {
            let fixed: Vec<String> = r
                .fixed
                .iter()
                .map(|(k, v)| format!("`{k}=\"{v}\"`"))
                .collect();
            for l in r.labels {
                let names: &[&str] = match l {
                    Label::Skip => &[],
                    Label::Name(n) | Label::Title(n) => &[n],
                    Label::Interface => &["interface"],
                    Label::Device => &["device"],
                    Label::DeviceNumbers => &["device", "major", "minor"],
                };
                for n in names {
                    let n = format!("`{n}`");
                    if !labels.contains(&n) {
                        labels.push(n);
                    }
                }
            }
            let def = r.metric.def();
            let what = match &r.select {
                Select::All => format!("`{}`", def.name),
                Select::Attr(at, v) => format!("`{}` {} = {v}", def.name, def.attributes[*at]),
                Select::Sum => format!("`{}`, summed", def.name),
                Select::Sample(_, source) => source.to_string(),
                Select::Disk(_) => format!(
                    "`{}` of the container's writable layer, from the disk thread; `device` is \
                     the source of the filesystem holding it",
                    def.name
                ),
            };
            if matches!(r.select, Select::Disk(_)) && !labels.iter().any(|l| l == "`device`") {
                labels.push("`device`".to_string());
            }
            let what = match r.conv {
                Conv::Same => what,
                Conv::StartTime => format!("now − {what}"),
                Conv::LastSeen => format!("when the sample was read ({what})"),
            };
            from.push(if fixed.is_empty() {
                what
            } else {
                format!("{}: {what}", fixed.join(", "))
            });
        }
        let none = CgroupSample::default();
        let mut quota = CgroupSample::default();
        quota.cpu.quota_us = Some(100_000);
        let when = match rows.iter().find(|r| !(r.when)(&none)) {
            None => "",
            Some(r) if (r.when)(&quota) => " (under a CPU quota only)",
            Some(_) => " (not for every container)",
        };
        let labels = if labels.is_empty() {
            "–".to_string()
        } else {
            labels.join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {labels} | {}{when} |\n",
            f.name,
            f.prom_type(),
            from.join("<br>")
        ));
    }
    for m in CADVISOR_MACHINE {
        out.push_str(&format!(
            "| `{}` | gauge | – (no container labels) | {}, read at start |\n",
            m.name, m.source
        ));
    }
    out
}
