//! Why a container ended: the one rule that joins the kernel's word and the runtime's into the
//! exit shown on a container's final sample (`container.exit.code` and its
//! `container.exit.reason`), and the runtime's word itself ([`RuntimeExit`]), which the
//! runtimes' metadata sources fill for the collector. Where each value comes from, and why the
//! kernel decides OOM and the runtime the code: `docs/exits.md`.

use std::time::SystemTime;

use crate::cgroup::CgroupSample;

/// What a runtime said about the end of one run of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeExit {
    /// The exit status, when the runtime gave one in 0–255.
    pub code: Option<u8>,
    /// The runtime gave a status outside 0–255 (not an exit status: dropped).
    pub invalid_code: bool,
    /// Whether the runtime says the OOM killer killed it, when it says.
    pub oom: Option<bool>,
    /// Which run ended (Docker's and Podman's `RestartCount`, the CRI's `attempt`).
    pub restart_count: Option<u32>,
    /// When the runtime says the process finished.
    pub finished_at: Option<SystemTime>,
}

impl RuntimeExit {
    /// An exit status as a runtime sends it (an event attribute, a CRI `int32`): kept when it
    /// is one (0–255), else flagged.
    pub fn with_code(mut self, code: Option<i64>) -> RuntimeExit {
        match code.map(u8::try_from) {
            Some(Ok(c)) => self.code = Some(c),
            Some(Err(_)) => self.invalid_code = true,
            None => {}
        }
        self
    }
}

/// The reason, in Kubernetes' words (the kubelet's `ContainerStateTerminated.Reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ExitReason {
    /// Exited with status 0.
    Completed,
    /// Exited with another status (or was killed by a signal).
    Error,
    /// A process of the container was killed by the kernel's OOM killer.
    #[serde(rename = "OOMKilled")]
    OomKilled,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Completed => "Completed",
            ExitReason::Error => "Error",
            ExitReason::OomKilled => "OOMKilled",
        }
    }
}

/// The end of one run of a container, as shown on its final sample (and in `snapshot`'s JSON,
/// as its fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Exit {
    /// The exit status the runtime reported (128 + n for signal n); `None` when only the
    /// kernel's OOM verdict is known.
    pub code: Option<u8>,
    pub reason: ExitReason,
    /// Which run ended: Docker's and Podman's `RestartCount` of that run, the CRI's `attempt`.
    pub restart_count: Option<u32>,
    /// Which run ended by the exporter's own count: the n-th run of this container id it saw
    /// end, from 1 (runtimes count only some restarts: Docker none made by `docker restart`).
    pub run: u32,
}

/// What the container's own cgroup says about OOM kills, from its last sample: `Some(true)` when
/// the OOM killer killed a process in it, `Some(false)` when the counters read after its last
/// process left show none, `None` when they were not read (no memory controller, a file that
/// could not be read) or only before the exit (a cgroup removed before its final read).
pub fn kernel_oom(sample: Option<&CgroupSample>) -> Option<bool> {
    let s = sample?;
    let kills = s.memory.oom_kills.unwrap_or(0) + s.memory.oom_group_kills.unwrap_or(0);
    if kills > 0 {
        return Some(true);
    }
    let counted = s.memory.oom_kills.is_some() || s.memory.oom_group_kills.is_some();
    (counted && s.populated == Some(false)).then_some(false)
}

/// The exit to show: `kernel` from [`kernel_oom`], `runtime` what the runtime said about this
/// run, if anything. `OOMKilled` when the kernel counted an OOM kill in the container's cgroup,
/// whatever the code (the runtime's OOM word only when the kernel's count is unknown); else
/// `Completed` for code 0, `Error` for another; with neither an OOM kill nor a code, none. The
/// kernel's word stands against the runtime's: Docker says `OOMKilled=false` for some
/// containers the OOM killer killed when many end at once (`docs/exits.md`). Its run is the
/// first; the caller that counts runs sets it.
pub fn verdict(kernel: Option<bool>, runtime: Option<&RuntimeExit>) -> Option<Exit> {
    let code = runtime.and_then(|r| r.code);
    let restart_count = runtime.and_then(|r| r.restart_count);
    let oom = match kernel {
        Some(true) => true,
        // Counted after the exit and none: a runtime saying OOM heard of another cgroup's.
        Some(false) => false,
        None => runtime.and_then(|r| r.oom) == Some(true),
    };
    let reason = match (oom, code) {
        (true, _) => ExitReason::OomKilled,
        (false, Some(0)) => ExitReason::Completed,
        (false, Some(_)) => ExitReason::Error,
        (false, None) => return None,
    };
    Some(Exit {
        code,
        reason,
        restart_count,
        run: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(code: Option<u8>, oom: Option<bool>) -> RuntimeExit {
        RuntimeExit {
            code,
            oom,
            restart_count: Some(0),
            ..RuntimeExit::default()
        }
    }

    fn reason(kernel: Option<bool>, runtime: Option<&RuntimeExit>) -> Option<(&str, Option<u8>)> {
        verdict(kernel, runtime).map(|e| (e.reason.as_str(), e.code))
    }

    /// Cases of the kernel's count, the runtime's code and OOM word, and the verdict on them.
    type Case = (Option<bool>, Option<u8>, Option<bool>, Verdict);
    type Verdict = Option<(&'static str, Option<u8>)>;
    const T: Option<bool> = Some(true);
    const F: Option<bool> = Some(false);

    #[test]
    fn codes_outside_0_255_are_dropped() {
        for (raw, code, invalid) in [
            (Some(300), None, true),
            (Some(-1), None, true),
            (Some(255), Some(255), false),
            (None, None, false),
        ] {
            let e = RuntimeExit::default().with_code(raw);
            assert_eq!((e.code, e.invalid_code), (code, invalid), "{raw:?}");
        }
    }

    #[test]
    fn the_runtime_gives_the_code_and_the_kernel_the_oom() {
        let cases: &[Case] = &[
            (F, Some(0), F, Some(("Completed", Some(0)))),
            (F, Some(3), F, Some(("Error", Some(3)))),
            // Killed for memory: both agree.
            (T, Some(137), T, Some(("OOMKilled", Some(137)))),
            // A child killed for memory while the main process exits 0.
            (T, Some(0), T, Some(("OOMKilled", Some(0)))),
            // Even when the runtime missed the OOM notification.
            (T, Some(0), F, Some(("OOMKilled", Some(0)))),
            // `docker kill`: 137 from SIGKILL, no OOM kill counted: not an OOM.
            (F, Some(137), F, Some(("Error", Some(137)))),
            // An OOM of the pod's cgroup: the pod's limit was hit, the kernel killed a process
            // of another container. This one's own counter is 0, though a v1 runtime heard the
            // pod's OOM notification.
            (F, Some(0), T, Some(("Completed", Some(0)))),
            // The container whose process was killed counts it in its own cgroup.
            (T, Some(137), F, Some(("OOMKilled", Some(137)))),
            // Without the kernel's count, the runtime says OOM.
            (None, Some(137), T, Some(("OOMKilled", Some(137)))),
            (None, Some(1), None, Some(("Error", Some(1)))),
            // A runtime that gave no usable code: only the kernel's OOM.
            (F, None, F, None),
            (T, None, None, Some(("OOMKilled", None))),
        ];
        for &(kernel, code, oom, want) in cases {
            let said = rt(code, oom);
            let got = reason(kernel, Some(&said));
            assert_eq!(got, want, "{kernel:?} {code:?} {oom:?}");
        }
    }

    #[test]
    fn without_a_runtime_only_the_kernels_oom() {
        assert_eq!(reason(T, None), Some(("OOMKilled", None)));
        assert_eq!(reason(F, None), None);
        assert_eq!(reason(None, None), None);
    }

    #[test]
    fn the_kernels_count_after_the_exit_or_before() {
        let mut s = CgroupSample::default();
        assert_eq!(kernel_oom(Some(&s)), None);
        assert_eq!(kernel_oom(None), None);
        s.memory.oom_kills = Some(0);
        // Read while it still ran: a kill may have come after.
        s.populated = Some(true);
        assert_eq!(kernel_oom(Some(&s)), None);
        s.populated = Some(false);
        assert_eq!(kernel_oom(Some(&s)), Some(false));
        s.memory.oom_group_kills = Some(1);
        assert_eq!(kernel_oom(Some(&s)), Some(true));
        s.memory.oom_group_kills = None;
        s.memory.oom_kills = Some(2);
        s.populated = Some(true);
        assert_eq!(kernel_oom(Some(&s)), Some(true));
    }
}
