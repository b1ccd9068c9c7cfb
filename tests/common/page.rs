//! The Prometheus text format as this exporter writes it (no timestamps, no exemplars), parsed
//! strictly, and queries over a parsed page.

use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses a page strictly: a line that is not a comment, blank, or `name{labels} value` fails
/// the test, and so does a sample with a timestamp or a bad escape.
pub fn parse_page(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            assert!(
                c.starts_with(" HELP ") || c.starts_with(" TYPE "),
                "line {}: unexpected comment {line:?}",
                n + 1
            );
            continue;
        }
        out.push(parse_sample(line).unwrap_or_else(|e| panic!("line {}: {e}: {line:?}", n + 1)));
    }
    out
}

pub fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or("no value after the metric name")?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        || name.as_bytes()[0].is_ascii_digit()
    {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let mut end = None;
        loop {
            // label name
            let mut lname = String::new();
            loop {
                match chars.next() {
                    Some((i, '}')) if lname.is_empty() => {
                        end = Some(i);
                        break;
                    }
                    Some((_, '=')) => break,
                    Some((_, c)) if c.is_ascii_alphanumeric() || c == '_' => lname.push(c),
                    other => return Err(format!("bad label name character {other:?}")),
                }
            }
            if end.is_some() {
                break;
            }
            if chars.next().map(|c| c.1) != Some('"') {
                return Err(format!("label {lname}: value not quoted"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next().map(|c| c.1) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => return Err(format!("label {lname}: bad escape \\{other:?}")),
                    },
                    Some((_, '\n')) => return Err(format!("label {lname}: raw newline")),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("label {lname}: unterminated value")),
                }
            }
            if labels.insert(lname.clone(), value).is_some() {
                return Err(format!("label {lname} repeated"));
            }
            match chars.next() {
                Some((_, ',')) => continue,
                Some((i, '}')) => {
                    end = Some(i);
                    break;
                }
                other => return Err(format!("after label {lname}: {other:?}")),
            }
        }
        rest = &r[end.unwrap() + 1..];
    }
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    if value.contains(' ') {
        return Err("more than one field after the labels (a timestamp?)".into());
    }
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|e| format!("value {v:?}: {e}"))?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

pub struct Page {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Page {
    pub fn new(text: String) -> Page {
        let samples = parse_page(&text);
        Page { text, samples }
    }

    /// Samples of `name` whose labels include all of `want`.
    pub fn series(&self, name: &str, want: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                want.iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    pub fn get(&self, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        match self.series(name, want).as_slice() {
            [] => None,
            [s] => Some(s.value),
            many => panic!("{} series of {name} match {want:?}: {many:?}", many.len()),
        }
    }

    /// A self-metric that must be there.
    pub fn value(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.get(name, want)
            .unwrap_or_else(|| panic!("{name}{want:?} is not on the page:\n{}", self.text))
    }

    pub fn has_container(&self, id: &str) -> bool {
        self.samples
            .iter()
            .any(|s| s.labels.get("container_id").is_some_and(|v| v == id))
    }

    /// Whether container `id` has network series for its `lo` (all test containers have one).
    pub fn has_lo_network(&self, id: &str) -> bool {
        !self
            .series(
                "container_network_io_bytes_total",
                &[("container_id", id), ("network_interface_name", "lo")],
            )
            .is_empty()
    }

    pub fn container_lines(&self, id: &str) -> String {
        self.text
            .lines()
            .filter(|l| l.contains(id))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// user + system CPU time of one container, when both are there.
    pub fn cpu_seconds(&self, id: &str) -> Option<f64> {
        let user = self.get(
            "container_cpu_time_seconds_total",
            &[("container_id", id), ("cpu_mode", "user")],
        )?;
        let system = self.get(
            "container_cpu_time_seconds_total",
            &[("container_id", id), ("cpu_mode", "system")],
        )?;
        Some(user + system)
    }
}
