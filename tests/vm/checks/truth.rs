//! The runtime phase's results as the guest returned them (`rt/`): the pages it scraped, by
//! tag, and each container's ground truth (what its workload wrote, the spec its runtime ran).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use super::Truth;
use super::page::Page;
use super::subjects::Naming;

pub(crate) struct Ctx<'a> {
    pub(crate) rt: PathBuf,
    pub(crate) t: &'a Truth,
    pub(crate) majmin: String,
    /// (file name, status) in scrape order, from `pages/index`.
    pub(crate) index: Vec<(String, String)>,
}

impl Ctx<'_> {
    /// The page of `tag` (`running`, `burn-final`, …) with these names.
    pub(crate) fn page(&self, tag: &str, n: Naming) -> Result<Page, String> {
        // NNN-<tag>.<ext>
        let want = format!("{tag}.{}", n.ext());
        let is = |f: &str| f.split_once('-').is_some_and(|(_, rest)| rest == want);
        let Some((file, status)) = self.index.iter().rev().find(|(f, _)| is(f)) else {
            return Err(format!(
                "no page NNN-{want} was scraped (see rt/pages/index and scenario.log)"
            ));
        };
        if status == "timeout" {
            return Err(format!(
                "{file}: what the guest waited for never showed on the page within its bound \
                 (the last scrape is kept there)"
            ));
        }
        Page::load(&self.rt.join("pages").join(file))
    }

    pub(crate) fn truth(&self, name: &str, file: &str) -> Result<String, String> {
        let p = self.rt.join(name).join(file);
        std::fs::read_to_string(&p).map_err(|e| format!("rt/{name}/{file}: {e}"))
    }

    /// The processes a container's script started (itself included): lines of its `pids`.
    pub(crate) fn started(&self, name: &str) -> Result<f64, String> {
        Ok(self
            .truth(name, "pids")?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count() as f64)
    }

    /// `user + sys` and `real` of a `time -p` report.
    pub(crate) fn burn(&self, name: &str) -> Result<(f64, f64), String> {
        let text = self.truth(name, "burn.time")?;
        let get = |k: &str| {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(k)?
                        .strip_prefix(' ')?
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
                .ok_or_else(|| format!("rt/{name}/burn.time: no {k} in {text:?}"))
        };
        Ok((get("user")? + get("sys")?, get("real")?))
    }

    /// The bytes busybox `dd` says it wrote: its "N+0 records out" times its block size
    /// (`rt.<name>.bs`; Debian's busybox prints no byte count). A partial record is refused.
    pub(crate) fn dd_bytes(&self, name: &str, file: &str) -> Result<f64, String> {
        let text = self.truth(name, file)?;
        let bs = self.t.fact_f(&format!("rt.{name}.bs"));
        text.lines()
            .find_map(|l| {
                let (full, partial) = l.strip_suffix(" records out")?.split_once('+')?;
                (partial == "0").then(|| full.parse::<f64>().ok())?
            })
            .map(|records| records * bs)
            .ok_or_else(|| format!("rt/{name}/{file}: no whole \"N+0 records out\" in {text:?}"))
    }

    /// The interfaces of the container's own network namespace, from the `/proc/net/dev` its
    /// workload read inside it.
    pub(crate) fn ifaces(&self, name: &str) -> Result<BTreeSet<String>, String> {
        let text = self.truth(name, "net.dev")?;
        let names: BTreeSet<String> = text
            .lines()
            .skip(2)
            .filter_map(|l| Some(l.split_once(':')?.0.trim().to_string()))
            .collect();
        if names.is_empty() {
            return Err(format!("rt/{name}/net.dev: no interface in {text:?}"));
        }
        Ok(names)
    }

    pub(crate) fn spec(&self, name: &str) -> Result<Value, String> {
        let text = self.truth(name, "config.json")?;
        serde_json::from_str(&text).map_err(|e| format!("rt/{name}/config.json: {e}"))
    }

    pub(crate) fn spec_num(&self, name: &str, path: &[&str]) -> Result<f64, String> {
        let spec = self.spec(name)?;
        let mut v = &spec;
        for k in path {
            v = &v[*k];
        }
        v.as_f64()
            .ok_or_else(|| format!("rt/{name}/config.json: no number at {}", path.join(".")))
    }
}

/// runc's conversion of CPU shares to cgroup v2's `cpu.weight` (libcontainer/cgroups,
/// `ConvertCPUSharesToCgroupV2Value`).
pub(crate) fn runc_weight(shares: f64) -> f64 {
    let s = shares as u64;
    if s == 0 {
        0.0
    } else {
        (1 + ((s - 2) * 9999) / 262142) as f64
    }
}

/// The cAdvisor page's conversion back (README: `2 + (weight − 1) × 262142 ÷ 9999`).
pub(crate) fn shares_of_weight(weight: f64) -> f64 {
    let w = weight as u64;
    (2 + ((w - 1) * 262142) / 9999) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_trip_as_runc_and_cadvisor_convert() {
        // containerd's default 1024 shares: weight 39 (RUNTIME.md), 998 on the cAdvisor page
        assert_eq!(runc_weight(1024.0), 39.0);
        assert_eq!(shares_of_weight(39.0), 998.0);
        assert_eq!(runc_weight(2.0), 1.0);
        assert_eq!(runc_weight(262144.0), 10000.0);
        assert_eq!(shares_of_weight(100.0), 2597.0);
    }
}
