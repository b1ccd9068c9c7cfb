//! The length bound of what the runtimes say about a container (names, image references,
//! labels, Kubernetes names, pod labels), applied where a description enters a store
//! ([`super::MetadataStore::insert`]), so that every output (the Prometheus page, OTLP,
//! `snapshot`) and the daemon's memory see the same bounded values.
//!
//! Anyone who may create a container chooses its labels, and the Docker API takes a label of
//! megabytes: shown through `--container-labels`, one such label would put megabytes on every
//! page and into the exporter's memory, and a Prometheus server with
//! `label_value_length_limit` refuses the scrape of the whole host for it, not just that
//! container.
//!
//! The bound is in bytes, as Prometheus's `label_value_length_limit` and Mimir's and Cortex's
//! `max_label_value_length` count; a value is cut at the last UTF-8 character boundary
//! within it. A label whose key alone is longer is left out (a cut key could pass for
//! another label). What the operator sets (`OTEL_RESOURCE_ATTRIBUTES`, `--host-name`) is not
//! bounded: it is no container's to choose.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{ContainerMeta, PodMeta};

/// The default bound (see [`crate::config::DEFAULT_VALUE_LENGTH_LIMIT`] for why 2048 bytes).
pub const DEFAULT_VALUE_LENGTH_LIMIT: usize = crate::config::DEFAULT_VALUE_LENGTH_LIMIT as usize;

/// How long a value may be, and the count of values cut (shared with the self-metrics).
#[derive(Debug, Clone)]
pub struct ValueLimit {
    max: usize,
    cut: Arc<AtomicU64>,
}

impl Default for ValueLimit {
    fn default() -> ValueLimit {
        ValueLimit::new(DEFAULT_VALUE_LENGTH_LIMIT, Arc::default())
    }
}

impl ValueLimit {
    /// At most `max` bytes per value; cuts are added to `cut`.
    pub fn new(max: usize, cut: Arc<AtomicU64>) -> ValueLimit {
        ValueLimit { max, cut }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Cuts the values of a container's description to the bound (and leaves out labels
    /// whose key is longer); returns how many values were cut or left out ([`count`]ed by the
    /// caller once it knows the description is news).
    ///
    /// [`count`]: Self::count
    pub fn apply(&self, m: &mut ContainerMeta) -> u64 {
        let mut n = 0;
        for s in [
            &mut m.name,
            &mut m.image_name,
            &mut m.image_id,
            &mut m.k8s_pod_name,
            &mut m.k8s_namespace_name,
            &mut m.k8s_container_name,
            &mut m.k8s_pod_uid,
            &mut m.runtime_name,
        ]
        .into_iter()
        .flatten()
        {
            n += u64::from(cut(s, self.max));
        }
        for t in &mut m.image_tags {
            n += u64::from(cut(t, self.max));
        }
        n += self.labels(&mut m.labels);
        n
    }

    /// The same for a pod's description (its uid is the key it is found by: not cut).
    pub fn apply_pod(&self, m: &mut PodMeta) -> u64 {
        let mut n = 0;
        for s in [&mut m.name, &mut m.namespace].into_iter().flatten() {
            n += u64::from(cut(s, self.max));
        }
        n += self.labels(&mut m.labels);
        n
    }

    fn labels(&self, labels: &mut Vec<(String, String)>) -> u64 {
        let before = labels.len();
        labels.retain(|(k, _)| k.len() <= self.max);
        let mut n = (before - labels.len()) as u64;
        for (_, v) in labels.iter_mut() {
            n += u64::from(cut(v, self.max));
        }
        n
    }

    /// Adds `n` values cut to the count.
    pub fn count(&self, n: u64) {
        if n > 0 {
            self.cut.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Cuts `s` to at most `max` bytes, at a character boundary; true when it was longer.
fn cut(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut at = max;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s.truncate(at);
    s.shrink_to_fit();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_at_a_character_boundary() {
        for (value, max, want) in [
            ("abcdef", 4, "abcd"),
            ("abc", 4, "abc"),
            ("abcd", 4, "abcd"),
            // '€' is three bytes: 'a' + one '€' fits in 4, a second does not.
            ("a€€", 4, "a€"),
            ("a€€", 5, "a€"),
            ("a€€", 7, "a€€"),
            ("€", 2, ""),
            ("é", 1, ""),
        ] {
            let mut s = value.to_string();
            let was_cut = cut(&mut s, max);
            assert_eq!(s, want, "{value:?} at {max}");
            assert_eq!(was_cut, value.len() > max, "{value:?} at {max}");
        }
    }

    #[test]
    fn every_value_of_a_description_is_bounded_and_counted() {
        let long = "x".repeat(100);
        let counter = Arc::new(AtomicU64::new(0));
        let limit = ValueLimit::new(10, counter.clone());
        let mut m = ContainerMeta {
            name: Some(long.clone()),
            image_name: Some("busybox".into()),
            image_tags: vec![long.clone(), "latest".into()],
            image_id: Some(long.clone()),
            labels: vec![
                ("a".into(), long.clone()),
                ("b".into(), "short".into()),
                (long.clone(), "the key is too long".into()),
            ],
            k8s_pod_name: Some(long.clone()),
            k8s_namespace_name: Some(long.clone()),
            k8s_container_name: Some(long.clone()),
            k8s_pod_uid: Some(long.clone()),
            runtime_name: Some(long.clone()),
            ..Default::default()
        };
        assert_eq!(limit.apply(&mut m), 10);
        limit.count(10);
        assert_eq!(m.name.as_deref(), Some("xxxxxxxxxx"));
        assert_eq!(m.image_name.as_deref(), Some("busybox"));
        assert_eq!(m.image_tags, ["xxxxxxxxxx", "latest"]);
        assert_eq!(
            m.labels,
            [
                ("a".to_string(), "xxxxxxxxxx".to_string()),
                ("b".to_string(), "short".to_string())
            ]
        );
        for v in [
            &m.image_id,
            &m.k8s_pod_name,
            &m.k8s_namespace_name,
            &m.k8s_container_name,
            &m.k8s_pod_uid,
            &m.runtime_name,
        ] {
            assert_eq!(v.as_deref(), Some("xxxxxxxxxx"));
        }
        let mut p = PodMeta {
            uid: long.clone(),
            name: Some(long.clone()),
            namespace: Some("default".into()),
            labels: vec![("app".into(), long.clone())],
        };
        assert_eq!(limit.apply_pod(&mut p), 2);
        limit.count(2);
        assert_eq!(p.uid, long, "the pod's key is kept whole");
        assert_eq!(counter.load(Ordering::Relaxed), 12);
        // What is within the bound is untouched.
        assert_eq!(limit.apply(&mut m), 0);
    }
}
