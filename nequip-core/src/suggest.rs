//! "Did you mean ...?" suggestions for unknown keys and names.

/// The candidate closest to `name` if it is close enough to be a plausible typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = name.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        if c == name {
            continue;
        }
        let score = strsim::jaro_winkler(&lower, &c.to_lowercase());
        if best.is_none_or(|(s, b)| score > s || (score == s && c < b)) {
            best = Some((score, c));
        }
    }
    best.filter(|(s, _)| *s >= 0.85).map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn typos_find_their_key() {
        let keys = ["num_features", "num_basis", "num_layers", "r_max"];
        assert_eq!(super::closest("num_feature", keys).as_deref(), Some("num_features"));
        assert_eq!(super::closest("numlayers", keys).as_deref(), Some("num_layers"));
        assert_eq!(super::closest("completely_else", keys), None);
    }
}
