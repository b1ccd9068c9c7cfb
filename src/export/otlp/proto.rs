//! Protobuf's wire format, the few pieces the request writer uses: varints, length-delimited
//! fields, and fields whose length is reserved before their body is written and filled in
//! after (see [`open`] and [`close`]).

#[inline]
pub fn varint_len(v: usize) -> usize {
    // 1 byte per 7 bits, at least one.
    let bits = usize::BITS - (v | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

#[inline]
pub fn put_varint(buf: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
pub fn put_len_field(buf: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    buf.push(tag);
    put_varint(buf, bytes.len());
    buf.extend_from_slice(bytes);
}

/// A proto3 `string` field outside a oneof: not written when empty.
pub fn put_str_field(buf: &mut Vec<u8>, tag: u8, s: &str) {
    if !s.is_empty() {
        put_len_field(buf, tag, s.as_bytes());
    }
}

/// Opens a length-delimited field: writes its tag and reserves `reserve` bytes for the
/// length. Returns where the length goes.
#[inline]
pub fn open(buf: &mut Vec<u8>, tag: u8, reserve: u8) -> usize {
    buf.push(tag);
    let at = buf.len();
    buf.resize(at + reserve as usize, 0);
    at
}

/// Closes the field [`open`] started at `at`: writes its length (minimal varint), moving
/// the body when the reserved size was wrong. Returns the size the length took.
#[inline]
pub fn close(buf: &mut Vec<u8>, at: usize, reserve: u8) -> u8 {
    let reserve = reserve as usize;
    let body = at + reserve;
    let len = buf.len() - body;
    let need = varint_len(len);
    if need > reserve {
        let end = buf.len();
        buf.resize(end + need - reserve, 0);
        buf.copy_within(body..end, at + need);
    } else if need < reserve {
        buf.copy_within(body.., at + need);
        buf.truncate(buf.len() - (reserve - need));
    }
    let mut v = len;
    for b in &mut buf[at..at + need] {
        *b = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
    }
    buf[at + need - 1] &= 0x7f;
    need as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        for v in [
            0usize,
            1,
            127,
            128,
            300,
            16383,
            16384,
            1 << 21,
            usize::MAX >> 1,
        ] {
            let mut a = Vec::new();
            put_varint(&mut a, v);
            assert_eq!(a.len(), varint_len(v), "{v}");
            assert_eq!(a.len(), prost::encoding::encoded_len_varint(v as u64));
            let mut b = Vec::new();
            prost::encoding::encode_varint(v as u64, &mut b);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn close_moves_the_body_when_the_guess_is_wrong() {
        for len in [0usize, 5, 127, 128, 200, 16383, 16384, 20000] {
            for reserve in 1..=3u8 {
                let mut buf = vec![9u8];
                let at = open(&mut buf, 0x0a, reserve);
                buf.extend((0..len).map(|i| i as u8));
                close(&mut buf, at, reserve);
                let mut want = vec![9u8, 0x0a];
                put_varint(&mut want, len);
                want.extend((0..len).map(|i| i as u8));
                assert_eq!(buf, want, "len {len} reserve {reserve}");
            }
        }
    }
}
