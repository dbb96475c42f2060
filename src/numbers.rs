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
