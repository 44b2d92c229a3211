//! Values quoted in a `Reason`, kept to a readable length, the one rule behind every
//! "did you mean" ([`closest`]), and IAM's wildcard match ([`wildcard_match`]).
//!
//! A `Reason` shares the response's 4,096 bytes with everything else (CONTRACT 6), so a value
//! the user wrote (a 2,500-character `Sid`, a 10,000-character action, ECR's own message) must
//! never crowd out the explanation around it (CONTRACT 10). A leaf module: it depends on
//! nothing else of the crate, so every layer may use it.

/// The most characters of a value that a `Reason` quotes.
pub const MAX_QUOTED_CHARS: usize = 80;

const ELLIPSIS: char = '…';

/// `value` cut to at most `max_chars` characters (not bytes), on a character boundary, with an
/// ellipsis as its last character when something was cut.
pub fn shorten(value: &str, max_chars: usize) -> String {
    if max_chars == 0 {
        return String::new();
    }
    match value.char_indices().nth(max_chars) {
        // Fewer than max_chars + 1 characters: it fits as it is.
        None => value.to_owned(),
        Some(_) => {
            let keep = value
                .char_indices()
                .nth(max_chars - 1)
                .map_or(value.len(), |(at, _)| at);
            let mut short = String::with_capacity(keep + ELLIPSIS.len_utf8());
            short.push_str(&value[..keep]);
            short.push(ELLIPSIS);
            short
        }
    }
}

/// `value` shortened to [`MAX_QUOTED_CHARS`] and quoted as `format!("{:?}")` quotes a string,
/// so a short value reads exactly as the provider's messages always quoted it.
pub fn quote(value: &str) -> String {
    format!("{:?}", shorten(value, MAX_QUOTED_CHARS))
}

/// Each value quoted and shortened, comma-separated, at most `MAX_LISTED` of them.
pub fn quote_all(values: &[String]) -> String {
    const MAX_LISTED: usize = 10;
    let mut listed: Vec<String> = values.iter().take(MAX_LISTED).map(|v| quote(v)).collect();
    if values.len() > MAX_LISTED {
        listed.push(format!("and {} more", values.len() - MAX_LISTED));
    }
    listed.join(", ")
}

/// The most edits a "did you mean" suggestion may be away, and at least this many characters
/// of the suggestion per edit.
const MAX_EDITS: usize = 3;
const CHARS_PER_EDIT: usize = 5;

/// The candidate closest to `name`, ignoring case (Damerau-Levenshtein distance), with its
/// distance, when it is close: at most [`MAX_EDITS`] edits, and at most one per
/// [`CHARS_PER_EDIT`] characters of the candidate. The first of equally close ones wins.
pub fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<(&'a str, usize)> {
    let name = name.to_lowercase();
    let name_len = name.chars().count();
    let mut best: Option<(&'a str, usize)> = None;
    for candidate in candidates {
        let lower = candidate.to_lowercase();
        let len = lower.chars().count();
        // The distance is at least the difference in length: skip the work (and a long
        // value's quadratic cost) when it cannot be close.
        if name_len.abs_diff(len) > MAX_EDITS {
            continue;
        }
        let distance = strsim::damerau_levenshtein(&name, &lower);
        let close = distance <= MAX_EDITS && distance * CHARS_PER_EDIT <= len;
        if close && best.is_none_or(|(_, d)| distance < d) {
            best = Some((candidate, distance));
        }
    }
    best
}

/// An error and its causes in words, without a debug dump: "dispatch failure: io error:
/// connection reset by peer".
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// `*` and `?` wildcard matching, as IAM matches actions and ARNs: `*` stands for any run of
/// characters (colons included), `?` for exactly one. Case-sensitive: callers fold case
/// where IAM does.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // The last `*` seen and the text position it is currently stretched to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_as_debug_quotes_them() {
        for value in [
            "",
            "AllowPull",
            "with \"quotes\" and \\",
            "tab\there",
            "Zugriff 🚀",
        ] {
            assert_eq!(quote(value), format!("{value:?}"));
        }
    }

    #[test]
    fn an_empty_value_stays_empty() {
        assert_eq!(shorten("", 80), "");
        assert_eq!(quote(""), "\"\"");
    }

    #[test]
    fn exactly_the_limit_is_kept_whole() {
        let value = "x".repeat(MAX_QUOTED_CHARS);
        assert_eq!(shorten(&value, MAX_QUOTED_CHARS), value);
        assert_eq!(quote(&value), format!("\"{value}\""));
    }

    #[test]
    fn one_past_the_limit_is_cut_with_an_ellipsis() {
        let value = "x".repeat(MAX_QUOTED_CHARS + 1);
        let short = shorten(&value, MAX_QUOTED_CHARS);
        assert_eq!(short.chars().count(), MAX_QUOTED_CHARS);
        assert_eq!(short, "x".repeat(MAX_QUOTED_CHARS - 1) + "…");
        assert_eq!(quote(&value), format!("\"{short}\""));
    }

    #[test]
    fn multi_byte_characters_are_counted_and_cut_whole() {
        // 2-, 3- and 4-byte characters: the cut never splits one.
        for unit in ["ü", "€", "🚀"] {
            let value = unit.repeat(100);
            let short = shorten(&value, MAX_QUOTED_CHARS);
            assert_eq!(short.chars().count(), MAX_QUOTED_CHARS);
            assert!(short.starts_with(&unit.repeat(MAX_QUOTED_CHARS - 1)));
            assert!(short.ends_with('…'));
            let exact = unit.repeat(MAX_QUOTED_CHARS);
            assert_eq!(shorten(&exact, MAX_QUOTED_CHARS), exact);
        }
    }

    #[test]
    fn a_2500_character_sid_quotes_in_under_100_bytes_of_characters() {
        let quoted = quote(&"S".repeat(2500));
        assert_eq!(quoted.chars().count(), MAX_QUOTED_CHARS + 2);
    }

    #[test]
    fn the_closest_candidate_is_suggested_only_when_close() {
        let known = ["PolicyText", "Adopt", "RepositoryName", "AllowPublicAccess"];
        assert_eq!(
            closest("RepositoryNmae", known),
            Some(("RepositoryName", 1))
        );
        assert_eq!(closest("policytext", known), Some(("PolicyText", 0)));
        assert_eq!(
            closest("AllowPublicAcess", known),
            Some(("AllowPublicAccess", 1))
        );
        assert_eq!(closest("Adpot", known), Some(("Adopt", 1)));
        // Two edits on five characters, or four anywhere, are too far.
        assert_eq!(closest("Adxxt", known), None);
        assert_eq!(closest("RepoNameXX", known), None);
        assert_eq!(closest(&"x".repeat(10_000), known), None);
    }

    #[test]
    fn tiny_limits_still_hold() {
        assert_eq!(shorten("abc", 0), "");
        assert_eq!(shorten("abc", 1), "…");
        assert_eq!(shorten("abc", 2), "a…");
        assert_eq!(shorten("abc", 3), "abc");
    }

    #[test]
    fn wildcards_match_as_iam_matches() {
        for (pattern, text) in [
            ("*", ""),
            ("*", "anything:at/all"),
            ("a*", "a"),
            ("a*c", "abbbc"),
            ("a?c", "abc"),
            ("*b*", "abc"),
            ("a*b*c", "aXbYbZc"),
            ("us-*", "us-east-1"),
            ("repository/*", "repository/a/b"),
            ("??????????12", "123456789012"),
            ("é?", "éü"),
        ] {
            assert!(wildcard_match(pattern, text), "{pattern} ~ {text}");
        }
        for (pattern, text) in [
            ("", "a"),
            ("a", ""),
            ("a?c", "ac"),
            ("a*c", "abcd"),
            ("A", "a"),
            ("us-*-2", "us-east-1"),
            ("?", ""),
        ] {
            assert!(!wildcard_match(pattern, text), "{pattern} !~ {text}");
        }
    }
}
