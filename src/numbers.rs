//! Numbers as people read them in a report or an estimate: `1,234,567`, `$1.56M`, `54%`.

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
