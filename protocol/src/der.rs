//! A minimal DER writer: one TLV with a definite length (hash-chain step
//! values, time-stamp requests and test responders build DER with it).

/// `tag`, the DER length of `content`, then `content`.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_and_long_lengths() {
        assert_eq!(super::tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        let long = super::tlv(0x04, &[0; 300]);
        assert_eq!(&long[..4], [0x04, 0x82, 0x01, 0x2C]);
        assert_eq!(long.len(), 304);
    }
}
