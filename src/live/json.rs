//! A small JSON writer for the API's responses: strings escaped so that no response can be
//! read as markup (`<`, `>`, `&` and the JS line separators as `\u` escapes), and the series'
//! points written with four significant digits (a chart needs three; full `f32` precision
//! would double the payload and defeat its compression).

use std::io::Write;

/// Writes one JSON document; commas go in by themselves.
#[derive(Default)]
pub struct Json {
    pub out: Vec<u8>,
    comma: bool,
}

impl Json {
    pub fn with_capacity(n: usize) -> Json {
        Json {
            out: Vec::with_capacity(n),
            comma: false,
        }
    }

    fn sep(&mut self) {
        if self.comma {
            self.out.push(b',');
        }
    }

    pub fn open(&mut self, bracket: u8) -> &mut Self {
        self.sep();
        self.out.push(bracket);
        self.comma = false;
        self
    }

    pub fn close(&mut self, bracket: u8) -> &mut Self {
        self.out.push(bracket);
        self.comma = true;
        self
    }

    pub fn key(&mut self, k: &str) -> &mut Self {
        self.string(k);
        self.out.push(b':');
        self.comma = false;
        self
    }

    pub fn string(&mut self, s: &str) -> &mut Self {
        self.sep();
        self.out.push(b'"');
        let mut start = 0;
        for (i, c) in s.char_indices() {
            let escape = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                _ => None,
            };
            let unicode = matches!(c, '\0'..='\x1f' | '<' | '>' | '&' | '\u{2028}' | '\u{2029}');
            if escape.is_none() && !unicode {
                continue;
            }
            self.out.extend_from_slice(&s.as_bytes()[start..i]);
            match escape {
                Some(e) => self.out.extend_from_slice(e.as_bytes()),
                None => {
                    let _ = write!(self.out, "\\u{:04x}", c as u32);
                }
            }
            start = i + c.len_utf8();
        }
        self.out.extend_from_slice(&s.as_bytes()[start..]);
        self.out.push(b'"');
        self.comma = true;
        self
    }

    pub fn opt_string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.string(s),
            None => self.null(),
        }
    }

    pub fn null(&mut self) -> &mut Self {
        self.raw("null")
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.raw(if b { "true" } else { "false" })
    }

    fn raw(&mut self, s: &str) -> &mut Self {
        self.sep();
        self.out.extend_from_slice(s.as_bytes());
        self.comma = true;
        self
    }

    pub fn uint(&mut self, v: u64) -> &mut Self {
        self.raw(itoa::Buffer::new().format(v))
    }

    /// A number as precise as it is (`null` when not finite).
    pub fn number(&mut self, v: f64) -> &mut Self {
        if !v.is_finite() {
            return self.null();
        }
        if v.fract() == 0.0 && v.abs() < 1e15 {
            return self.raw(itoa::Buffer::new().format(v as i64));
        }
        self.raw(ryu::Buffer::new().format_finite(v))
    }

    pub fn opt_number(&mut self, v: Option<f64>) -> &mut Self {
        self.number(v.unwrap_or(f64::NAN))
    }

    /// A point of a series: four significant digits, `null` for no value.
    pub fn point(&mut self, v: f32) -> &mut Self {
        self.sep();
        point(&mut self.out, v);
        self.comma = true;
        self
    }
}

/// `v` with four significant digits, in the shorter of the decimal and `<digits>e<exp>` forms.
fn point(out: &mut Vec<u8>, v: f32) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let a = f64::from(v).abs();
    if a == 0.0 {
        out.push(b'0');
        return;
    }
    if v < 0.0 {
        out.push(b'-');
    }
    let mut exp = a.log10().floor() as i32 - 3;
    let mut m = (a / 10f64.powi(exp)).round() as u64;
    if m >= 10_000 {
        m /= 10;
        exp += 1;
    }
    while m % 10 == 0 && m > 0 {
        m /= 10;
        exp += 1;
    }
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(m).as_bytes();
    let n = digits.len() as i32;
    let scientific = |out: &mut Vec<u8>| {
        out.extend_from_slice(digits);
        out.push(b'e');
        out.extend_from_slice(itoa::Buffer::new().format(exp).as_bytes());
    };
    if exp >= 0 {
        if exp <= 2 {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', exp as usize));
        } else {
            scientific(out);
        }
    } else if n + exp > 0 {
        let point = (n + exp) as usize;
        out.extend_from_slice(&digits[..point]);
        out.push(b'.');
        out.extend_from_slice(&digits[point..]);
    } else if -(n + exp) <= 2 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-(n + exp)) as usize));
        out.extend_from_slice(digits);
    } else {
        scientific(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: f32) -> String {
        let mut out = Vec::new();
        point(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn points_have_four_significant_digits_in_the_shorter_form() {
        assert_eq!(p(0.0), "0");
        assert_eq!(p(12.0), "12");
        assert_eq!(p(4096.0), "4096");
        assert_eq!(p(12345.0), "12350");
        assert_eq!(p(123_456_789.0), "1235e5");
        assert_eq!(p(100.0), "100");
        assert_eq!(p(1000.0), "1e3");
        assert_eq!(p(0.5), "0.5");
        assert_eq!(p(1.5), "1.5");
        assert_eq!(p(0.012_346), "0.01235");
        assert_eq!(p(0.000_012_34), "1234e-8");
        assert_eq!(p(-2.25), "-2.25");
        assert_eq!(p(9999.7), "1e4");
        assert_eq!(p(f32::NAN), "null");
        assert_eq!(p(f32::INFINITY), "null");
        for v in [
            1e-9f32, 3.3e-5, 0.1, 0.25, 1.0, 7.77, 123.4, 5e5, 2.5e9, 6.02e23, 1.17e-38,
        ] {
            let got: f64 = p(v).parse().unwrap();
            let rel = (got - f64::from(v)).abs() / f64::from(v);
            assert!(rel < 5e-4, "{v} → {}", p(v));
        }
    }

    #[test]
    fn strings_never_read_as_markup() {
        let mut j = Json::default();
        j.open(b'[')
            .string("<img src=x onerror=alert(1)></script>&\"\\\n\u{1}\u{2028}é")
            .point(1.0)
            .null()
            .close(b']');
        let text = String::from_utf8(j.out).unwrap();
        assert_eq!(
            text,
            "[\"\\u003cimg src=x onerror=alert(1)\\u003e\\u003c/script\\u003e\\u0026\\\"\\\\\\n\\u0001\\u2028é\",1,null]"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back[0],
            "<img src=x onerror=alert(1)></script>&\"\\\n\u{1}\u{2028}é"
        );
    }

    #[test]
    fn objects_put_their_commas() {
        let mut j = Json::default();
        j.open(b'{')
            .key("a")
            .uint(1)
            .key("b")
            .open(b'[')
            .number(0.5)
            .number(2.0);
        j.close(b']').key("c").opt_string(None).close(b'}');
        assert_eq!(
            String::from_utf8(j.out).unwrap(),
            r#"{"a":1,"b":[0.5,2],"c":null}"#
        );
    }
}
