//! The report `check` prints: findings, each with its level and topic, and the verdict.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Note,
    Warn,
    Fail,
}

/// One finding.
pub struct Finding {
    pub level: Level,
    pub topic: &'static str,
    pub text: String,
}

#[derive(Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn add(&mut self, level: Level, topic: &'static str, text: impl Into<String>) {
        self.findings.push(Finding {
            level,
            topic,
            text: text.into(),
        });
    }

    /// Where findings on `topic` go: `r.on("disk").warn(text)`.
    pub fn on(&mut self, topic: &'static str) -> On<'_> {
        On(self, topic)
    }

    /// True when the exporter could not do its job here.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.level == Level::Fail)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let tag = match f.level {
                Level::Ok => "ok  ",
                Level::Note => "note",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            let _ = writeln!(out, "{tag}  {:<12} {}", f.topic, f.text);
        }
        let verdict = if self.failed() {
            "\nverdict: the exporter cannot work here as configured; fix the FAIL lines above."
        } else if self.findings.iter().any(|f| f.level == Level::Warn) {
            "\nverdict: the exporter works here, with the limits the warn lines describe."
        } else {
            "\nverdict: the exporter works here."
        };
        out.push_str(verdict);
        out.push('\n');
        out
    }
}

/// Findings on one topic, added at the level each method names.
pub struct On<'a>(&'a mut Report, &'static str);

/// A finding on the topic, at each level.
impl On<'_> {
    pub fn ok(self, text: impl Into<String>) {
        self.0.add(Level::Ok, self.1, text)
    }

    pub fn note(self, text: impl Into<String>) {
        self.0.add(Level::Note, self.1, text)
    }

    pub fn warn(self, text: impl Into<String>) {
        self.0.add(Level::Warn, self.1, text)
    }

    pub fn fail(self, text: impl Into<String>) {
        self.0.add(Level::Fail, self.1, text)
    }
}
