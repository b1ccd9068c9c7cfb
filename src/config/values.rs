//! The values flags take, and their parsers (clap's `value_parser`s, which answer `String`
//! errors by clap's convention): durations, `off`, CPU shares, listen addresses, value lengths.

use std::net::SocketAddr;
use std::time::Duration;

/// Whether a setting says `off` (the one spelling every `off`-able flag accepts: `off`, any
/// case, or empty).
pub fn is_off(s: &str) -> bool {
    s.is_empty() || s.eq_ignore_ascii_case("off")
}

/// A span of time, the one grammar of every duration the exporter reads (its flags and the
/// web config's `rate_limit.interval`): Go's `time.ParseDuration` form, one or more numbers
/// each with its unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`: `1m30s`, `1.5s`), or a bare number
/// of seconds; `0` is zero.
pub fn parse_span(s: &str) -> Result<Duration, DurationError> {
    let text = s.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return in_range(s, secs);
    }
    let malformed = || DurationError::Malformed(s.to_owned());
    if text.is_empty() {
        return Err(malformed());
    }
    let (mut secs, mut rest) = (0f64, text);
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(malformed)?;
        let n: f64 = rest[..n_end].parse().map_err(|_| malformed())?;
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
            _ => return Err(DurationError::Unit(s.to_owned())),
        };
        secs += n * scale;
        rest = &rest[u_end..];
    }
    in_range(s, secs)
}

fn in_range(s: &str, secs: f64) -> Result<Duration, DurationError> {
    if secs.is_finite() && (0.0..1e9).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(DurationError::Range(s.to_owned()))
    }
}

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is not a duration like 10s, 500ms, 1m or 1m30s")]
    Malformed(String),
    #[error("`{0}`: the unit must be ns, us, ms, s, m or h")]
    Unit(String),
    #[error("`{0}` is out of range")]
    Range(String),
}

/// `10s`, `500ms`, `1m`, `2h`, `1m30s`, or a bare number of seconds; zero is refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match parse_span(s) {
        Ok(d) if d.is_zero() => Err(format!("`{s}` must be more than zero")),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// `--exit-wait`: a duration, or `0`, up to a minute.
pub fn parse_exit_wait(s: &str) -> Result<Duration, String> {
    if s.trim().trim_end_matches(['s', 'm']).trim() == "0" {
        return Ok(Duration::ZERO);
    }
    let d = parse_duration(s)?;
    if d > Duration::from_secs(60) {
        return Err(format!(
            "`{s}` is too long: a final sample waits for its runtime's word at most a minute"
        ));
    }
    Ok(d)
}

/// A duration, or `off` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationOrOff(pub Option<Duration>);

pub fn parse_duration_or_off(s: &str) -> Result<DurationOrOff, String> {
    if is_off(s) {
        Ok(DurationOrOff(None))
    } else {
        parse_duration(s).map(|d| DurationOrOff(Some(d)))
    }
}

/// `5%` or `0.05`: a share of one CPU, more than 0 and at most 1.
pub fn parse_share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a share like 5% or 0.05"))?;
    if !(v > 0.0 && v <= 1.0) {
        return Err(format!("`{s}` must be more than 0 and at most 100%"));
    }
    Ok(v)
}

/// Where to listen, or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    Off,
    On(SocketAddr),
}

pub fn parse_listen(s: &str) -> Result<Listen, String> {
    if is_off(s) {
        return Ok(Listen::Off);
    }
    // `:9464` is a common shorthand for every interface.
    let full = s
        .strip_prefix(':')
        .map_or(s.to_string(), |port| format!("0.0.0.0:{port}"));
    full.parse()
        .map(Listen::On)
        .map_err(|_| format!("`{s}` is not an address like 0.0.0.0:9464, [::]:9464 or off"))
}

/// The default of `--attribute-value-length-limit`: Mimir's and Cortex's
/// `max_label_value_length` (a series with a longer value is refused there), far above any
/// real name, image reference or label, and it keeps a container's info line within a few
/// KiB. Prometheus has no limit unless one is configured.
pub const DEFAULT_VALUE_LENGTH_LIMIT: u32 = 2048;

/// `--attribute-value-length-limit`: bytes, 16 to 1 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueLength(pub u32);

impl Default for ValueLength {
    fn default() -> ValueLength {
        ValueLength(DEFAULT_VALUE_LENGTH_LIMIT)
    }
}

impl std::fmt::Display for ValueLength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

pub fn parse_value_length(s: &str) -> Result<ValueLength, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (16..=1 << 20).contains(&n) => Ok(ValueLength(n)),
        _ => Err(format!("`{s}` is not a length in bytes from 16 to 1048576")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_addresses() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_span("0"), Ok(Duration::ZERO));
        assert_eq!(parse_span("1h1m1s1ms").unwrap().as_millis(), 3_661_001);
        assert!(matches!(
            parse_span("5 parsecs"),
            Err(DurationError::Unit(_))
        ));
        assert!(matches!(parse_span("s"), Err(DurationError::Malformed(_))));
        assert!(matches!(
            parse_span("-1s"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(parse_span("1e12"), Err(DurationError::Range(_))));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10x").is_err());
        assert_eq!(parse_listen("off"), Ok(Listen::Off));
        assert_eq!(
            parse_listen(":9464"),
            Ok(Listen::On("0.0.0.0:9464".parse().unwrap()))
        );
        assert!(parse_listen("localhost").is_err());
        assert_eq!(parse_share("5%"), Ok(0.05));
        assert_eq!(parse_share("0.5"), Ok(0.5));
        assert!(parse_share("0").is_err() && parse_share("150%").is_err());
        assert_eq!(parse_duration_or_off("off"), Ok(DurationOrOff(None)));
    }

    #[test]
    fn exit_waits() {
        assert_eq!(parse_exit_wait("0"), Ok(Duration::ZERO));
        assert_eq!(parse_exit_wait("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_exit_wait("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_exit_wait("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_exit_wait("500ms"), Ok(Duration::from_millis(500)));
        assert!(
            parse_exit_wait("2m")
                .unwrap_err()
                .contains("at most a minute")
        );
        assert!(parse_exit_wait("soon").is_err());
    }
}
