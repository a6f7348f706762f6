//! Kubernetes-style resource quantities (`"500m"`, `"2"`, `"512Mi"`, `"4Gi"`), parsed strictly:
//! anything a reader could take two ways is refused rather than guessed.

use serde::Deserialize;
use std::fmt;

/// Why a quantity was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QuantityError(String);

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits `text` into a plain decimal number (digits, at most one `.`) and its suffix.
fn split(text: &str) -> Result<(&str, &str), QuantityError> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(end);
    let digits = number.replace('.', "");
    if digits.is_empty() || number.matches('.').count() > 1 || number.ends_with('.') {
        return Err(QuantityError(format!(
            "'{text}' is not a quantity: expected a number such as 2, 0.5 or 500m"
        )));
    }
    Ok((number, suffix))
}

/// `number * scale` exactly, refusing results below one unit's fraction or beyond `u64`.
fn scaled(text: &str, number: &str, scale: u128) -> Result<u64, QuantityError> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.len() > 9 {
        return Err(QuantityError(format!(
            "'{text}' has too many decimal places"
        )));
    }
    let denominator = 10u128.pow(fraction.len() as u32);
    let numerator = format!("{whole}{fraction}")
        .parse::<u128>()
        .map_err(|_| QuantityError(format!("'{text}' is too large")))?;
    let total = numerator
        .checked_mul(scale)
        .ok_or_else(|| QuantityError(format!("'{text}' is too large")))?;
    if total % denominator != 0 {
        return Err(QuantityError(format!(
            "'{text}' is finer than the smallest unit"
        )));
    }
    u64::try_from(total / denominator).map_err(|_| QuantityError(format!("'{text}' is too large")))
}

/// CPU in millicores: `"2"` is 2000, `"0.5"` and `"500m"` are 500.
pub(crate) fn cpu_millis(text: &str) -> Result<u64, QuantityError> {
    let (number, suffix) = split(text)?;
    let scale = match suffix {
        "" => 1000,
        "m" => 1,
        other => {
            return Err(QuantityError(format!(
                "'{text}': unknown CPU unit '{other}' (use cores such as 2 or 0.5, or millicores such as 500m)"
            )));
        }
    };
    let millis = scaled(text, number, scale)?;
    if millis == 0 {
        return Err(QuantityError(format!("'{text}' is no CPU at all")));
    }
    // The engine refuses less than a hundredth of a CPU (after Weft's checks, as a 502); say so
    // here, in our words.
    if millis < MIN_CPU_MILLIS {
        return Err(QuantityError(format!(
            "'{text}' is below the smallest CPU share, 10m (0.01 CPU)"
        )));
    }
    Ok(millis)
}

/// The smallest CPU share a container can have, in millicores.
const MIN_CPU_MILLIS: u64 = 10;

/// Memory in bytes: binary suffixes `Ki Mi Gi Ti`, decimal `k M G T`, or plain bytes.
pub(crate) fn memory_bytes(text: &str) -> Result<u64, QuantityError> {
    let (number, suffix) = split(text)?;
    let scale: u128 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        other => {
            return Err(QuantityError(format!(
                "'{text}': unknown memory unit '{other}' (use Ki, Mi, Gi, Ti or k, M, G, T; units are case-sensitive)"
            )));
        }
    };
    let bytes = scaled(text, number, scale)?;
    // The engine refuses limits below 6 MB; say so here, in our words.
    if bytes < MIN_MEMORY {
        return Err(QuantityError(format!(
            "'{text}' is below the smallest memory limit, 6Mi"
        )));
    }
    Ok(bytes)
}

/// The smallest memory limit a container can have.
pub(crate) const MIN_MEMORY: u64 = 6 << 20;

/// A whole number of GPUs.
pub(crate) fn gpus(text: &str) -> Result<u32, QuantityError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuantityError(format!(
            "'{text}' is not a whole number of GPUs"
        )));
    }
    text.parse()
        .map_err(|_| QuantityError(format!("'{text}' is too many GPUs")))
}

/// Millicores written back as a quantity (`2000` -> `"2"`, `500` -> `"500m"`).
pub(crate) fn format_cpu(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// Bytes written back in the largest binary unit that divides them (`4294967296` -> `"4Gi"`).
pub(crate) fn format_memory(bytes: u64) -> String {
    for (suffix, shift) in [("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{suffix}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// A quantity (`"2"`, `"500m"`, `"4Gi"`) as text, also when it arrives as a number: the
/// environment's `16` and a file's `max_cpu = 16` are numbers to the loader.
pub(crate) fn quantity<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Text(String),
        Whole(u64),
        Fraction(f64),
    }
    Ok(match Given::deserialize(deserializer)? {
        Given::Text(text) => text,
        Given::Whole(n) => n.to_string(),
        Given::Fraction(x) => x.to_string(),
    })
}

/// [`quantity`], optional.
pub(crate) fn optional_quantity<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "quantity")] String);
    Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|w| w.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_accepts_cores_and_millicores() {
        assert_eq!(cpu_millis("2"), Ok(2000));
        assert_eq!(cpu_millis("0.5"), Ok(500));
        assert_eq!(cpu_millis("1.25"), Ok(1250));
        assert_eq!(cpu_millis("500m"), Ok(500));
        assert_eq!(cpu_millis("10m"), Ok(10));
        assert_eq!(cpu_millis("0.01"), Ok(10));
        assert_eq!(format_cpu(2000), "2");
        assert_eq!(format_cpu(1500), "1500m");
    }

    #[test]
    fn cpu_refuses_what_is_ambiguous_or_empty() {
        for bad in [
            "", "0", "0m", "-1", "2 ", " 2", "2c", "2M", "1.", ".", "1..2", "0.0001", "1e3",
            "2.5m", "1m", "9m", "0.005",
        ] {
            assert!(cpu_millis(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn memory_accepts_binary_decimal_and_bytes() {
        assert_eq!(memory_bytes("4Gi"), Ok(4 << 30));
        assert_eq!(memory_bytes("512Mi"), Ok(512 << 20));
        assert_eq!(memory_bytes("1.5Gi"), Ok(3 << 29));
        assert_eq!(memory_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(memory_bytes("10000000"), Ok(10_000_000));
        assert_eq!(format_memory(4 << 30), "4Gi");
        assert_eq!(format_memory(1_000_000_000), "1000000000");
    }

    #[test]
    fn memory_refuses_wrong_case_units_and_tiny_limits() {
        for bad in [
            "4gi",
            "4GB",
            "4GiB",
            "Gi",
            "-1Gi",
            "1Mi",
            "4 Gi",
            "1.0000000001Gi",
            "0.5",
            "99999999Ti",
        ] {
            assert!(memory_bytes(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn gpus_are_whole_numbers() {
        assert_eq!(gpus("0"), Ok(0));
        assert_eq!(gpus("2"), Ok(2));
        for bad in ["", "1.5", "-1", "one", "99999999999"] {
            assert!(gpus(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
