//! The length bound of what the runtimes say about a container (names, image references,
//! labels, Kubernetes names, pod labels), applied where a description enters a store
//! (`MetadataStore::insert`), so that every output and the daemon's memory see the same
//! bounded values: whoever starts a container chooses its labels (`docs/operations.md` says why
//! that matters, at `--attribute-value-length-limit`). The bound is in bytes, as Prometheus and
//! Mimir count; a value is cut at a character boundary; a label whose key alone is longer is
//! left out (a cut key could pass for another label); past `--attribute-count-limit`, labels
//! are kept in key order. What the operator sets is not bounded: it is no container's to choose.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::meta::{ContainerMeta, PodMeta};
use crate::config::{DEFAULT_LABEL_COUNT_LIMIT, DEFAULT_VALUE_LENGTH_LIMIT};

/// How long a value may be, how many labels a description may carry, and the count of values
/// cut or left out (shared with the self-metrics).
#[derive(Debug, Clone)]
pub struct ValueLimit {
    pub(crate) max: usize,
    pub(crate) max_labels: usize,
    cut: Arc<AtomicU64>,
}

/// What [`ValueLimit::apply`] did to one description.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cuts {
    /// Values cut to the length bound, or labels left out for a longer key.
    pub values: u64,
    /// Labels left out past the count bound.
    pub labels: u64,
}

impl Cuts {
    pub fn total(self) -> u64 {
        self.values + self.labels
    }
}

impl Default for ValueLimit {
    fn default() -> ValueLimit {
        ValueLimit::new(DEFAULT_VALUE_LENGTH_LIMIT as usize, Arc::default())
    }
}

impl ValueLimit {
    /// At most `max` bytes per value; cuts are added to `cut`.
    pub fn new(max: usize, cut: Arc<AtomicU64>) -> ValueLimit {
        ValueLimit {
            max,
            max_labels: DEFAULT_LABEL_COUNT_LIMIT as usize,
            cut,
        }
    }

    /// At most `n` labels per description (container labels, and a pod's labels).
    pub fn with_max_labels(mut self, n: usize) -> ValueLimit {
        self.max_labels = n;
        self
    }

    /// Cuts the values of a container's description to the bound (and leaves out labels
    /// whose key is longer, and those past the count bound); returns what was cut or left out
    /// ([`count`]ed by the caller once it knows the description is news).
    ///
    /// [`count`]: Self::count
    pub fn apply(&self, m: &mut ContainerMeta) -> Cuts {
        let values = [
            &mut m.name,
            &mut m.image_name,
            &mut m.image_id,
            &mut m.k8s_pod_name,
            &mut m.k8s_namespace_name,
            &mut m.k8s_container_name,
            &mut m.k8s_pod_uid,
            &mut m.runtime_name,
        ];
        let values = values.into_iter().flatten().chain(&mut m.image_tags);
        self.cut_all(values, &mut m.labels)
    }

    /// The same for a pod's description (its uid is the key it is found by: not cut).
    pub fn apply_pod(&self, m: &mut PodMeta) -> Cuts {
        let values = [&mut m.name, &mut m.namespace].into_iter().flatten();
        self.cut_all(values, &mut m.labels)
    }

    fn cut_all<'a>(
        &self,
        values: impl Iterator<Item = &'a mut String>,
        labels: &mut Vec<(String, String)>,
    ) -> Cuts {
        let mut values = values.map(|s| u64::from(cut(s, self.max))).sum::<u64>();
        let before = labels.len();
        labels.retain(|(k, _)| k.len() <= self.max);
        values += (before - labels.len()) as u64;
        let mut dropped = 0;
        if labels.len() > self.max_labels {
            // The first ones in key order, whatever order the runtime listed them in.
            labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            dropped = (labels.len() - self.max_labels) as u64;
            labels.truncate(self.max_labels);
            labels.shrink_to_fit();
        }
        for (_, v) in labels.iter_mut() {
            values += u64::from(cut(v, self.max));
        }
        Cuts {
            values,
            labels: dropped,
        }
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
        assert_eq!(
            limit.apply(&mut m),
            Cuts {
                values: 10,
                labels: 0
            }
        );
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
        assert_eq!(limit.apply_pod(&mut p).total(), 2);
        limit.count(2);
        assert_eq!(p.uid, long, "the pod's key is kept whole");
        assert_eq!(counter.load(Ordering::Relaxed), 12);
        // What is within the bound is untouched.
        assert_eq!(limit.apply(&mut m), Cuts::default());
    }

    #[test]
    fn labels_past_the_count_are_left_out_in_key_order() {
        let limit = ValueLimit::new(10, Arc::default()).with_max_labels(3);
        let label = |k: &str, v: &str| (k.to_string(), v.to_string());
        let mut m = ContainerMeta {
            labels: vec![
                label("e", "5"),
                label("b", "a value longer than ten"),
                label("d", "4"),
                label("a", "1"),
                label("c", "3"),
            ],
            ..Default::default()
        };
        // Two left out for the count, one value cut (of the labels kept).
        assert_eq!(
            limit.apply(&mut m),
            Cuts {
                values: 1,
                labels: 2
            }
        );
        assert_eq!(
            m.labels,
            [label("a", "1"), label("b", "a value lo"), label("c", "3")]
        );
        // At the bound: untouched, order included.
        let mut p = PodMeta {
            uid: "u".into(),
            labels: vec![label("z", "1"), label("y", "2"), label("x", "3")],
            ..Default::default()
        };
        assert_eq!(limit.apply_pod(&mut p), Cuts::default());
        assert_eq!(p.labels[0], label("z", "1"));
    }
}
