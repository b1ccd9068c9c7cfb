//! The exporter's Prometheus pages as the guest scraped them (`rt/pages/NNN-<tag>.<otel|cadvisor>`):
//! a small parser of the text format, enough to find a series by name and labels. Every lookup
//! error names the page file, so a failed check says where it looked.

use std::collections::BTreeMap;
use std::path::Path;

/// One sample line: `name{k="v",…} value`.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A scraped page.
#[derive(Debug, Default)]
pub struct Page {
    /// The file name (`004-running.otel`), for messages.
    pub file: String,
    pub series: Vec<Series>,
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// `k="v",k2="v2"` (the inside of the braces, escapes `\\`, `\"`, `\n`) and what follows `}`.
fn parse_labels(s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_string();
        rest = rest[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.insert(key, value);
        rest = &rest[end + 1..];
    }
}

impl Page {
    pub fn parse(file: &str, text: &str) -> Result<Page, String> {
        let mut series = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || format!("{file}:{}: not a sample line: {line:?}", n + 1);
            let (name, labels, rest) = match line.find(['{', ' ']) {
                Some(i) if line.as_bytes()[i] == b'{' => {
                    let (labels, rest) = parse_labels(&line[i + 1..]).ok_or_else(bad)?;
                    (&line[..i], labels, rest)
                }
                Some(i) => (&line[..i], BTreeMap::new(), &line[i..]),
                None => return Err(bad()),
            };
            let value = rest
                .split_whitespace()
                .next()
                .and_then(parse_value)
                .ok_or_else(bad)?;
            series.push(Series {
                name: name.to_string(),
                labels,
                value,
            });
        }
        Ok(Page {
            file: file.to_string(),
            series,
        })
    }

    pub fn load(path: &Path) -> Result<Page, String> {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if text.is_empty() {
            return Err(format!("{file}: empty (the scrape got nothing)"));
        }
        Page::parse(&file, &text)
    }

    /// Every series named `name` that has (at least) these labels.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Series> {
        self.series
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The one series named `name` with these labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64, String> {
        match self.find(name, labels).as_slice() {
            [s] => Ok(s.value),
            [] => Err(format!("{name}{} missing on {}", fmt(labels), self.file)),
            many => Err(format!(
                "{name}{} appears {} times on {}",
                fmt(labels),
                many.len(),
                self.file
            )),
        }
    }

    /// The sum of the series named `name` with these labels (at least one).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64, String> {
        let found = self.find(name, labels);
        if found.is_empty() {
            return Err(format!("{name}{} missing on {}", fmt(labels), self.file));
        }
        Ok(found.iter().map(|s| s.value).sum())
    }

    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        !self.find(name, labels).is_empty()
    }
}

fn fmt(labels: &[(&str, &str)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_escapes_and_special_values() {
        let p = Page::parse(
            "t",
            "# HELP x y\nx_total 3\na{b=\"c\\\"d\",e=\"\\\\\"} NaN\nq{k=\"1\"} 2.5e3\n",
        )
        .unwrap();
        assert_eq!(p.value("x_total", &[]).unwrap(), 3.0);
        assert!(
            p.value("a", &[("b", "c\"d"), ("e", "\\")])
                .unwrap()
                .is_nan()
        );
        assert_eq!(p.value("q", &[("k", "1")]).unwrap(), 2500.0);
        assert!(p.value("q", &[("k", "2")]).is_err());
    }
}
