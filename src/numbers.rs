//! Numbers as people read them in a report or an estimate: `1,234,567`, `$1.56M`, `54%`.

/// A size in bytes as PostgreSQL's `pg_size_pretty` writes it (and psql's `\dt+` shows it):
/// `10239 bytes`, `10 kB`, `20 MB`: bytes below 10240, then the first of kB, MB, GB, TB, PB in
/// which the value is below 20480 halves, rounded half away from zero (PostgreSQL 16's
/// `size_pretty_units`, dbsize.c).
pub fn bytes(bytes: i64) -> String {
    // (name, the limit below which the value is shown in it, whether it is shown rounded from
    // halves, its power of two)
    const UNITS: [(&str, u64, bool, u32); 6] = [
        ("bytes", 10 * 1024, false, 0),
        ("kB", 20 * 1024 - 1, true, 10),
        ("MB", 20 * 1024 - 1, true, 20),
        ("GB", 20 * 1024 - 1, true, 30),
        ("TB", 20 * 1024 - 1, true, 40),
        ("PB", 20 * 1024 - 1, true, 50),
    ];
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    let mut size = bytes;
    let mut unit = 0;
    loop {
        let (name, limit, round, bits) = UNITS[unit];
        match UNITS.get(unit + 1) {
            // The value goes on in the next unit, keeping one bit for the rounding.
            Some(&(_, _, next_round, next_bits)) if size.unsigned_abs() >= limit => {
                size /= 1_i64 << (next_bits - bits - u32::from(next_round) + u32::from(round));
                unit += 1;
            }
            _ => return format!("{} {name}", if round { half_rounded(size) } else { size }),
        }
    }
}

/// Parses a size such as `512M`, `2G`, `1.5GB` or `1048576` into bytes.
pub fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 =
        number.parse().map_err(|_| format!("invalid size `{s}`: expected a number and a unit, such as 512M"))?;
    let multiplier: f64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TB" | "TIB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("invalid size unit `{other}`: expected K, M, G or T")),
    };
    let bytes = number * multiplier;
    if bytes < 1.0 {
        return Err(format!("invalid size `{s}`: must be at least one byte"));
    }
    Ok(bytes as usize)
}

/// `1,234,567`
pub fn count(x: f64) -> String {
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < -0.5 { format!("-{out}") } else { out }
}

/// `$812`, `$14.2K`, `$1.56M`
pub fn money(x: f64) -> String {
    let sign = if x < 0.0 { "-" } else { "" };
    let a = x.abs();
    let body = if a >= 1e9 {
        format!("{:.2}B", a / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", a / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}K", a / 1e3)
    } else {
        format!("{a:.0}")
    };
    format!("{sign}${body}")
}

/// `54%`, `7.3%`
pub fn percent(x: f64) -> String {
    let p = x * 100.0;
    if p.abs() >= 10.0 || p == 0.0 { format!("{p:.0}%") } else { format!("{p:.1}%") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("512M"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("2g"), Ok(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("1.5GB"), Ok(1536 * 1024 * 1024));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").unwrap_err().contains("512M"));
        assert!(parse_size("3X").unwrap_err().contains("unit"));
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn sizes_are_pretty_as_postgresql_prints_them() {
        // SELECT pg_size_pretty(x::bigint) in PostgreSQL 16.
        for (n, text) in [
            (0, "0 bytes"),
            (10239, "10239 bytes"),
            (10240, "10 kB"),
            (10752, "11 kB"),
            (10485247, "10239 kB"),
            (10485248, "10 MB"),
            (1073741824, "1024 MB"),
            (-10240, "-10 kB"),
            (i64::MAX, "8192 PB"),
        ] {
            assert_eq!(bytes(n), text, "{n}");
        }
    }
}
