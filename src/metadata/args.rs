//! The metadata flags that are not a runtime's: which labels are shown, and the bounds on what
//! the runtimes say. (Where each runtime's API is, `Endpoints`, stands with the sources' rows.)

use clap::Args;

use crate::config::values::{ValueLength, parse_value_length};

/// Which of the runtimes' labels are shown, and how long and how many their values may be.
#[derive(Debug, Clone, Default, Args)]
pub struct LabelArgs {
    /// Container labels to export as `container.label.<key>` (on `container_info` on the
    /// Prometheus page, and on every series of the cAdvisor page, as cAdvisor writes them):
    /// comma-separated glob patterns (`*`, `?`), e.g. `com.example.team,app.*`. Default: none.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_CONTAINER_LABELS",
        value_delimiter = ',',
        value_name = "GLOBS"
    )]
    pub container_labels: Vec<String>,

    /// The former name of `--container-labels` (Docker labels), still accepted.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_DOCKER_LABELS",
        value_delimiter = ',',
        value_name = "GLOBS",
        hide = true
    )]
    pub docker_labels: Vec<String>,

    /// Kubernetes pod labels to export as `k8s.pod.label.<key>` (on `k8s_pod_info` on the
    /// Prometheus page), from the CRI: comma-separated glob patterns, e.g.
    /// `app.kubernetes.io/*,team`. Default: none.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_POD_LABELS",
        value_delimiter = ',',
        value_name = "GLOBS"
    )]
    pub pod_labels: Vec<String>,

    /// The longest value, in bytes, of what the runtimes say about a container or pod (its
    /// name, image reference, labels, Kubernetes names, pod labels), on the page, in OTLP and
    /// in `snapshot`: longer values are cut at a character boundary (a label whose key is
    /// longer is left out), counted in `container_exporter_metadata_values_cut_total` and
    /// warned about once per container. Whoever starts a container chooses its labels, and
    /// the Docker API takes labels of megabytes; a Prometheus server with
    /// `label_value_length_limit` refuses the whole page for one longer value, so keep this
    /// at or below it. The default, 2048, is Mimir's and Cortex's `max_label_value_length`.
    /// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` does not set it: the OpenTelemetry specification
    /// exempts resource attributes from that limit (and counts characters, not bytes).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        default_value_t = ValueLength::default(),
        value_parser = parse_value_length,
        value_name = "BYTES"
    )]
    pub attribute_value_length_limit: ValueLength,

    /// The most labels a container, or a pod, shows (those `--container-labels` and
    /// `--pod-labels` allow): past it, the first ones in key order are kept and the rest left
    /// out, counted in `container_exporter_metadata_values_cut_total` and warned about once per
    /// container. With an allow-list of globs a container chooses how many labels it shows, and
    /// the cAdvisor page puts each on every series; a Prometheus server with `label_limit`
    /// refuses the whole page for one series with more labels than that, and Mimir's
    /// `max_label_names_per_series` (30) refuses the series. The default, 128, is
    /// OpenTelemetry's default attribute count limit.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_ATTRIBUTE_COUNT_LIMIT",
        default_value_t = DEFAULT_LABEL_COUNT_LIMIT,
        value_parser = clap::value_parser!(u32).range(1..=10_000),
        value_name = "N"
    )]
    pub attribute_count_limit: u32,
}

/// The default of `--attribute-count-limit`: OpenTelemetry's default attribute count limit
/// (`OTEL_ATTRIBUTE_COUNT_LIMIT`), far above the labels anyone allows on purpose.
pub const DEFAULT_LABEL_COUNT_LIMIT: u32 = 128;

impl LabelArgs {
    /// The container-label allow-list (`--container-labels` and its former name).
    pub fn label_globs(&self) -> Vec<String> {
        let mut all = self.container_labels.clone();
        all.extend(self.docker_labels.iter().cloned());
        all.retain(|g| !g.is_empty());
        all
    }
}
