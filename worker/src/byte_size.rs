//! Memory sizes as people write them: `80GiB`, `80G`, `512MiB`, `1.5TiB`, or a bare number of
//! bytes. Binary units (`KiB`, `MiB`, `GiB`, `TiB`) and their one-letter forms (`K`, `M`, `G`,
//! `T`) count powers of 1024, as `nvidia-smi` does; decimal units (`KB`, `MB`, `GB`, `TB`) count
//! powers of 1000. Used by `--gpu-memory` and the worker config's `gpu_memory`.

const UNITS: &[(&str, u64)] = &[
    ("tib", 1 << 40),
    ("gib", 1 << 30),
    ("mib", 1 << 20),
    ("kib", 1 << 10),
    ("tb", 1_000_000_000_000),
    ("gb", 1_000_000_000),
    ("mb", 1_000_000),
    ("kb", 1_000),
    ("t", 1 << 40),
    ("g", 1 << 30),
    ("m", 1 << 20),
    ("k", 1 << 10),
    ("b", 1),
];

/// Parses a size; the error says what was expected.
pub fn parse(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let (number, unit) = UNITS
        .iter()
        .find_map(|(name, unit)| t.strip_suffix(name).map(|n| (n.trim(), *unit)))
        .unwrap_or((t.as_str(), 1));
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| {
            format!("{text:?} is not a memory size such as \"80GiB\", \"512MiB\" or \"40G\"")
        })?;
    let bytes = value * unit as f64;
    if bytes >= u64::MAX as f64 {
        return Err(format!("{text:?} is too large"));
    }
    Ok(bytes.round() as u64)
}

/// A size for people: the largest binary unit that keeps one decimal (`7.3GiB`, `512MiB`).
pub fn format(bytes: u64) -> String {
    for (name, unit) in [("TiB", 1u64 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)] {
        if bytes >= unit {
            let v = bytes as f64 / unit as f64;
            return if (v - v.round()).abs() < 0.05 {
                format!("{}{name}", v.round())
            } else {
                format!("{v:.1}{name}")
            };
        }
    }
    format!("{bytes}B")
}

/// Serde for an optional size: a string in [`parse`]'s syntax or an integer of bytes; written
/// back as a string in [`format`]'s syntax when exact, else as bytes.
pub mod serde_option {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            None => s.serialize_none(),
            Some(bytes) => {
                let text = super::format(*bytes);
                if super::parse(&text) == Ok(*bytes) {
                    s.serialize_str(&text)
                } else {
                    s.serialize_u64(*bytes)
                }
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<Size>::deserialize(d)? {
            None => Ok(None),
            Some(Size::Bytes(b)) => Ok(Some(b)),
            Some(Size::Text(t)) => super::parse(&t).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse("80GiB"), Ok(80 << 30));
        assert_eq!(parse("80G"), Ok(80 << 30));
        assert_eq!(parse("80 gib"), Ok(80 << 30));
        assert_eq!(parse("80GB"), Ok(80_000_000_000));
        assert_eq!(parse("512MiB"), Ok(512 << 20));
        assert_eq!(parse("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("10b"), Ok(10));
        for bad in ["", "GiB", "-1GiB", "eighty", "80 parsecs", "NaN"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse("1e30TiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn sizes_format() {
        assert_eq!(format(80 << 30), "80GiB");
        assert_eq!(format(7_800_000_000), "7.3GiB");
        assert_eq!(format(512 << 20), "512MiB");
        assert_eq!(format(100), "100B");
        assert_eq!(parse(&format(80 << 30)), Ok(80 << 30));
    }
}
