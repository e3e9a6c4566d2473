//! TOTP (RFC 6238) over HOTP (RFC 4226): HMAC-SHA-1, 6 digits, 30-second
//! steps — what every authenticator app reads from an `otpauth://` URI.

use aws_lc_rs::hmac;
use subtle::ConstantTimeEq;

/// RFC 6238 §5.2: 30 seconds is the recommended step.
pub const STEP_S: i64 = 30;
/// Steps accepted either side of now (RFC 6238 §5.2 recommends one).
const DRIFT: i64 = 1;

/// A new 160-bit seed (RFC 4226 §4 R6 recommends 160 bits).
pub fn new_seed() -> Vec<u8> {
    use rand::Rng;
    let mut seed = vec![0u8; 20];
    rand::rng().fill_bytes(&mut seed);
    seed
}

/// RFC 4226 §5.3: HMAC-SHA-1 of the counter, dynamic truncation, 6 digits.
pub fn hotp(seed: &[u8], counter: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, seed);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let h = mac.as_ref();
    let offset = usize::from(h.last().copied().unwrap_or(0) & 0x0f);
    let word = h
        .get(offset..offset + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| u32::from_be_bytes(b) & 0x7fff_ffff)
        .unwrap_or(0);
    format!("{:06}", word % 1_000_000)
}

/// The time step of `now_ms` (RFC 6238 §4.2, T0 = 0).
pub fn step_at(now_ms: i64) -> i64 {
    now_ms.div_euclid(1000).div_euclid(STEP_S)
}

/// The step, within ±1 of now, whose code `code` is, if any and if it is
/// later than `last_step` (RFC 6238 §5.2: a verifier must not accept the
/// second attempt of the same OTP). Every candidate is compared, in
/// constant time.
pub fn matching_step(seed: &[u8], code: &str, now_ms: i64, last_step: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(now_ms);
    let mut found = None;
    for step in (now - DRIFT)..=(now + DRIFT) {
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        let ok = bool::from(hotp(seed, counter).as_bytes().ct_eq(code.as_bytes()));
        if ok && step > last_step && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 §6 base32, unpadded: how authenticator apps take a seed.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let letter = |v: u32| char::from(ALPHABET.get((v & 31) as usize).copied().unwrap_or(b'A'));
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(letter(buf >> bits));
        }
    }
    if bits > 0 {
        out.push(letter(buf << (5 - bits)));
    }
    out
}

/// The seed from its base32 form (what `base32` made).
pub fn decode_seed(b32: &str) -> Option<Vec<u8>> {
    let (mut buf, mut bits) = (0u32, 0u32);
    let mut out = Vec::new();
    for c in b32.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buf >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// The `otpauth://totp/` URI of the Key Uri Format that authenticator apps
/// scan: the label is `issuer:account`, and issuer is repeated as a parameter.
pub fn otpauth_uri(issuer: &str, account: &str, seed: &[u8]) -> String {
    let enc = |s: &str| {
        url::form_urlencoded::byte_serialize(s.replace(':', " ").as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(account),
        base32(seed),
        enc(issuer)
    )
}

/// The URI as a QR code, an inline SVG (no image from elsewhere).
pub fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (the last six of eight digits).
    #[test]
    fn codes_match_rfc_6238_appendix_b() {
        let seed = b"12345678901234567890";
        for (t, eight) in [
            (59i64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let step = step_at(t * 1000);
            assert_eq!(hotp(seed, step as u64), eight[2..], "T = {t}");
        }
    }

    #[test]
    fn one_step_of_drift_either_side_and_no_replay() {
        let seed = b"12345678901234567890";
        let now = 1_111_111_111_000;
        let s = step_at(now);
        for d in [-1, 0, 1] {
            let code = hotp(seed, (s + d) as u64);
            assert_eq!(matching_step(seed, &code, now, 0), Some(s + d));
            // The step used (or any before it) is refused afterwards.
            assert_eq!(matching_step(seed, &code, now, s + d), None);
        }
        for far in [-2, 2] {
            let code = hotp(seed, (s + far) as u64);
            assert_eq!(matching_step(seed, &code, now, 0), None);
        }
        for bad in ["", "12345", "1234567", "abcdef", " 12 34"] {
            assert_eq!(matching_step(seed, bad, now, 0), None);
        }
    }

    #[test]
    fn base32_follows_rfc_4648_test_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(plain.as_bytes()), enc);
            assert_eq!(decode_seed(enc).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn the_uri_names_issuer_and_account_and_the_qr_is_svg() {
        let uri = otpauth_uri("Acme Corp", "ann@acme.example", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20Corp:ann%40acme.example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Corp&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri);
        assert!(svg.contains("<svg") && svg.ends_with("</svg>"));
    }
}
