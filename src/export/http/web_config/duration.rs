//! The durations of the web config (`rate_limit.interval`), as Go's `time.ParseDuration`
//! reads them.

use std::time::Duration;

/// Go's `time.ParseDuration` for what a config holds: `1s`, `500ms`, `1m30s`, `0`.
pub(super) fn go_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| format!("{s:?}: a number needs a unit (ms, s, m, h)"))?;
        let n: f64 = rest[..n_end]
            .parse()
            .map_err(|_| format!("{s:?} is not a duration like 1s or 500ms"))?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => return Err(format!("{s:?}: unknown unit {u:?}")),
        };
        total += n * scale;
        rest = &rest[u_end..];
    }
    if !total.is_finite() || total > 1e9 {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("1m30s").unwrap(), Duration::from_secs(90));
    }
}
