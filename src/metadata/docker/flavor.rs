//! Which daemon is at the other end of the Docker Engine API, and what that changes: the
//! event filter's names, the default socket, the names in log lines.

/// Where the Docker daemon listens when neither the configuration nor `DOCKER_HOST` says.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Where rootful Podman's service (`podman.socket`, or `podman system service`) listens.
pub const PODMAN_DEFAULT_HOST: &str = "unix:///run/podman/podman.sock";

/// `start` (new or restarted: name, image, StartedAt), `die`/`destroy` (schedule removal;
/// `die` says the exit status), `oom` (before the `die` of a container the OOM killer hit),
/// `rename` (name), `update` (re-inspect; cheap and rare). Nothing else changes what we keep:
/// create has no cgroup yet, kill/stop/restart are followed by die/start.
const EVENT_ACTIONS: [&str; 6] = ["start", "die", "destroy", "oom", "rename", "update"];
/// The same for Podman 4, in its filter's names: `died` is delivered as Action `die`, and a
/// removal is `remove`. (`update` events do not exist in Podman 4.3.)
const PODMAN_EVENT_ACTIONS: [&str; 4] = ["start", "died", "remove", "rename"];

/// Which daemon is at the other end of the Docker Engine API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    #[default]
    Docker,
    /// Podman's Docker-compatible service.
    Podman,
}

impl Flavor {
    /// For logs.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Docker => "Docker",
            Flavor::Podman => "Podman",
        }
    }

    pub(crate) fn event_filter(self) -> &'static [&'static str] {
        match self {
            Flavor::Docker => &EVENT_ACTIONS,
            Flavor::Podman => &PODMAN_EVENT_ACTIONS,
        }
    }
}
