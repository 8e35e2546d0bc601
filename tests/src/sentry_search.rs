//! Sentry's search syntax, as the Sentry API stand-in checks a metric alert rule's `query`.
//!
//! Following Sentry's "Search" documentation (docs.sentry.io/concepts/search/, "Query Syntax"):
//! a query is `key:value` tokens with an optional raw search (free text); tokens side by side
//! are joined by AND; `AND` and `OR` join tokens explicitly and parentheses group them (metric
//! alerts take both); `!key:value` excludes ("Exclusion"); a value is a word, a quoted string
//! (`key:"two words"`) or a list (`key:[a, b]`, "Multiple Values on the Same Key"); `*` is a
//! wildcard; `tags[key]:value` names a tag explicitly ("Explicit Tag Syntax"); numeric and date
//! keys take `>`, `<`, `>=`, `<=`. The reference for "Create a Metric Alert Rule for an
//! Organization" gives `query` as "an event search query to subscribe to and monitor for
//! alerts", e.g. `transaction:/checkout !status:ok`. Sentry answers a query it cannot parse
//! with 400 `{"nonFieldErrors": ["Invalid Query or Metric: ..."]}` (its alert-rule serializer).
//!
//! What is refused here: unbalanced parentheses, an unterminated quote or list, `AND`/`OR`
//! with nothing on one side, `!` before anything but a `key:value` filter, an empty key or an
//! empty value (write `key:""` for the empty string), and an empty list item. The stand-in
//! does not evaluate queries: no event is ever matched against one.

/// One piece of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Open,
    Close,
    Operator,
    Term,
}

/// Checks `query`; the error says what is wrong, as the text after "Invalid Query or Metric: ".
pub fn check(query: &str) -> Result<(), String> {
    structure(&pieces(query)?)
}

/// The query's pieces, each term checked on its own.
fn pieces(query: &str) -> Result<Vec<Piece>, String> {
    let chars: Vec<char> = query.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Piece::Open);
                i += 1;
            }
            ')' => {
                out.push(Piece::Close);
                i += 1;
            }
            _ => {
                let end = term_end(&chars, i)?;
                let text: String = chars[i..end].iter().collect();
                if text == "AND" || text == "OR" {
                    out.push(Piece::Operator);
                } else {
                    term(&text)?;
                    out.push(Piece::Term);
                }
                i = end;
            }
        }
    }
    Ok(out)
}

/// Where the term starting at `start` ends: at whitespace or a parenthesis outside quotes and
/// brackets (a bare value has neither whitespace nor parentheses).
fn term_end(chars: &[char], start: usize) -> Result<usize, String> {
    let (mut quoted, mut brackets, mut i) = (false, 0usize, start);
    while i < chars.len() {
        let c = chars[i];
        if quoted {
            match c {
                '\\' => i += 1,
                '"' => quoted = false,
                _ => {}
            }
        } else {
            match c {
                '"' => quoted = true,
                '[' => brackets += 1,
                ']' if brackets == 0 => return Err(format!("Parse error at ']' (column {})", i + 1)),
                ']' => brackets -= 1,
                c if brackets == 0 && (c.is_whitespace() || c == '(' || c == ')') => break,
                _ => {}
            }
        }
        i += 1;
    }
    if quoted {
        return Err(format!("Parse error: a quote opened at column {} is never closed", start + 1));
    }
    if brackets > 0 {
        return Err(format!("Parse error: a '[' after column {} is never closed", start + 1));
    }
    Ok(i.min(chars.len()))
}

/// One term: a filter `[!]key:[operator]value`, or free text.
fn term(text: &str) -> Result<(), String> {
    let (negated, rest) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let Some((key, value)) = split_filter(rest) else {
        if negated {
            return Err(format!("'{text}': '!' excludes a key:value filter, and there is none"));
        }
        return Ok(());
    };
    if !valid_key(key) {
        return Err(format!("'{text}': '{key}' is not a key"));
    }
    let value = [">=", "<=", ">", "<", "="].iter().find_map(|op| value.strip_prefix(op)).unwrap_or(value);
    if value.is_empty() {
        return Err(format!("'{text}': the filter has no value (write {key}:\"\" for the empty string)"));
    }
    if let Some(list) = value.strip_prefix('[') {
        let Some(items) = list.strip_suffix(']') else {
            return Err(format!("'{text}': a list ends at its ']'"));
        };
        if items.split(',').any(|item| item.trim().is_empty()) {
            return Err(format!("'{text}': the list has an empty item"));
        }
    } else if value.starts_with('"') && (value.len() < 2 || !value.ends_with('"')) {
        return Err(format!("'{text}': a quoted value ends at its closing quote"));
    }
    Ok(())
}

/// `key` and `value` of a filter: split at the first `:` outside `tags[...]`; none for free text.
fn split_filter(text: &str) -> Option<(&str, &str)> {
    let skip = if text.starts_with("tags[") { text.find(']').unwrap_or(0) } else { 0 };
    let at = skip + text[skip..].find(':')?;
    if text[..at].contains('"') {
        return None;
    }
    Some((&text[..at], &text[at + 1..]))
}

fn valid_key(key: &str) -> bool {
    let plain = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    match key.strip_prefix("tags[").and_then(|k| k.strip_suffix(']')) {
        Some(tag) => plain(tag),
        None => plain(key),
    }
}

/// Parentheses balance and every `AND`/`OR` has a term or a group on each side.
fn structure(pieces: &[Piece]) -> Result<(), String> {
    let mut depth = 0usize;
    let mut previous: Option<Piece> = None;
    for &piece in pieces {
        let after_operand = matches!(previous, Some(Piece::Term | Piece::Close));
        match piece {
            Piece::Open => depth += 1,
            Piece::Close if depth == 0 => return Err("Parse error: a ')' closes no '('".to_owned()),
            Piece::Close if !after_operand => return Err("Parse error: '()' or an operator before ')'".to_owned()),
            Piece::Close => depth -= 1,
            Piece::Operator if !after_operand => {
                return Err("AND and OR need a condition on each side".to_owned());
            }
            Piece::Operator | Piece::Term => {}
        }
        previous = Some(piece);
    }
    if previous == Some(Piece::Operator) {
        return Err("AND and OR need a condition on each side".to_owned());
    }
    if depth > 0 {
        return Err("Parse error: a '(' is never closed".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn the_documented_syntax_is_accepted() {
        for query in [
            "",
            "is_transaction:true",
            "is_transaction:true !ops.component:cineview-ops",
            "is:unresolved !user.email:example@customer.com",
            "transaction:/checkout !status:ok",
            "user.username:\"Jane Doe\" server:web-8 example error",
            "browser:Chrome OR browser:Opera",
            "x:a AND (y:b OR z:c)",
            "release:[12.0, 13.0] !tags[ops.component]:cineview-ops",
            "span.duration:>1500 url:*/api/*",
            "message:\"say \\\"hi\\\"\" key:\"\"",
        ] {
            assert_eq!(check(query), Ok(()), "{query}");
        }
    }

    #[test]
    fn malformed_queries_are_refused() {
        for query in [
            "is_transaction:true !",
            "!!ops.component:cineview-ops",
            "!free-text",
            "is_transaction:true !ops.component:",
            "!:cineview-ops",
            "ops component:\"cineview-ops",
            "(is_transaction:true",
            "is_transaction:true)",
            "x:a OR",
            "AND x:a",
            "x:a AND OR y:b",
            "()",
            "release:[12.0, ]",
            "release:[12.0",
            "!ops component:x",
        ] {
            assert!(check(query).is_err(), "{query:?} is refused");
        }
    }
}
